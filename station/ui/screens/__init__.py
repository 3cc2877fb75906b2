"""One Kivy screen per module; each renders a presenter's view models and forwards taps."""
