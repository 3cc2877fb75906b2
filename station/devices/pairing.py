"""The station's BlueZ pairing agent (org.bluez.Agent1 over D-Bus, with dbus-fast).

bleak registers no agent, and without one BlueZ cannot bond with a device that asks for a
passkey (Beurer SBM69 at first pairing). The station registers its own: NoInputNoOutput
("just works") when nothing has to be typed, or KeyboardOnly with the passkey request
handed to the UI through a callback (the MA types the number the device shows).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from dbus_fast import BusType, DBusError, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt16,
    DBusUInt32,
)
from dbus_fast.service import ServiceInterface, method

from station.config import BoundDevice
from station.devices.profiles import FirmwareProfile, load_profiles, uuid128

log = logging.getLogger(__name__)

AGENT_PATH = "/org/clinic/station/agent"
REJECTED = "org.bluez.Error.Rejected"
CANCELED = "org.bluez.Error.Canceled"
# dbus-fast reads a bare `-> None` under PEP 563 as no signature at all; say "no reply" so.
NoReply = Annotated[None, DBusSignature("")]

# Asks the person at the screen for the passkey the device `address` shows; None: cancelled.
PasskeyPrompt = Callable[[str], Awaitable[int | None]]


# BlueZ gives up on an agent request after 60 s (src/agent.c, REQUEST_TIMEOUT); answer before.
PASSKEY_WAIT_S = 55.0

# What BlueZ's pairing errors mean for the person at the station (org.bluez.Device1.Pair,
# doc/org.bluez.Device.rst: AuthenticationFailed, AuthenticationCanceled, AuthenticationRejected,
# AuthenticationTimeout, ConnectionAttemptFailed, AlreadyExists).
PAIRING_ERRORS: dict[str, str] = {
    "org.bluez.Error.AuthenticationFailed": "pairing failed: the device refused the passkey "
    "(a wrong number, or the device left pairing mode); it will ask again",
    "org.bluez.Error.AuthenticationCanceled": "pairing cancelled: nobody typed the passkey "
    "(biomed screen or `station devices pair ID`)",
    "org.bluez.Error.AuthenticationRejected": "pairing rejected: the station's agent refused it",
    "org.bluez.Error.AuthenticationTimeout": "pairing timed out: the device did not answer",
    "org.bluez.Error.ConnectionAttemptFailed": "pairing failed: the device did not answer",
    "org.bluez.Error.Rejected": "pairing rejected by the station's agent",
    "org.bluez.Error.Canceled": "pairing cancelled: nobody typed the passkey",
}


def describe_pairing_error(error_name: str | None, detail: str = "") -> str | None:
    """The words for a BlueZ pairing error, or None when it is not one."""
    words = PAIRING_ERRORS.get(error_name or "")
    if words is None:
        return None
    return f"{words} ({error_name}{': ' + detail if detail else ''})"


@dataclass(frozen=True)
class PasskeyRequest:
    """A device waiting for the passkey it shows to be typed on the station."""

    address: str
    asked_monotonic_s: float


class PasskeyRequests:
    """Passkey questions from the agent (on the Bluetooth loop) to a person (the biomed screen
    on the UI thread, or a terminal): `ask` is the agent's prompt; `pending()` and
    `answer(address, passkey)` are for the screen, from any thread.

    One question per device at a time: a device that asks again while its question is open
    waits for the same answer, so the person types the passkey once."""

    def __init__(
        self, on_change: Callable[[], None] = lambda: None, wait_s: float = PASSKEY_WAIT_S
    ) -> None:
        self._on_change = on_change
        self._wait_s = wait_s
        self._lock = threading.Lock()
        self._open: dict[
            str, tuple[asyncio.AbstractEventLoop, asyncio.Future[int | None], PasskeyRequest]
        ] = {}

    async def ask(self, address: str) -> int | None:
        loop = asyncio.get_running_loop()
        address = address.upper()
        with self._lock:
            entry = self._open.get(address)
            new = entry is None
            if entry is None:
                request = PasskeyRequest(address, time.monotonic())
                entry = (loop, loop.create_future(), request)
                self._open[address] = entry
        if new:
            log.info("pairing: %s asks for its passkey; waiting for it to be typed", address)
            self._on_change()
        future = entry[1]
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._wait_s)
        except TimeoutError:
            log.warning("pairing: no passkey typed for %s in %g s", address, self._wait_s)
            return None
        finally:
            with self._lock:
                if self._open.get(address) is entry:
                    del self._open[address]
            self._on_change()

    def pending(self) -> tuple[PasskeyRequest, ...]:
        with self._lock:
            return tuple(e[2] for e in sorted(self._open.values(), key=lambda e: e[2].address))

    def answer(self, address: str, passkey: int | None) -> bool:
        """The typed passkey (None: cancelled); False when nothing was asked for `address`."""
        with self._lock:
            entry = self._open.pop(address.upper(), None)
        if entry is None:
            return False
        loop, future, _request = entry

        def settle() -> None:
            if not future.done():
                future.set_result(passkey)

        loop.call_soon_threadsafe(settle)
        return True


class Capability(StrEnum):
    NO_INPUT_NO_OUTPUT = "NoInputNoOutput"
    KEYBOARD_ONLY = "KeyboardOnly"


def address_from_path(device_path: str) -> str:
    """/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF -> AA:BB:CC:DD:EE:FF."""
    return device_path.rsplit("/", 1)[-1].removeprefix("dev_").replace("_", ":")


# Services a bound health device may use besides its own (Bluetooth SIG assigned numbers):
# Generic Access 0x1800, Generic Attribute 0x1801, Current Time 0x1805, Device Information
# 0x180A, Battery 0x180F. Anything else — HID 0x1812 above all (a "cuff" that turns into a
# keyboard) — is refused.
SUPPORT_SERVICES = frozenset(uuid128(u) for u in ("1800", "1801", "1805", "180a", "180f"))


@dataclass(frozen=True)
class PairingPolicy:
    """How one bound device may pair, from its firmware profile."""

    profile: str
    passkey: bool  # the device shows a passkey the person types (behaviour.passkey)
    just_works: bool  # bonds without a passkey (behaviour.needs_bonding, no passkey)
    services: frozenset[str]  # 128-bit UUIDs the device may be authorised for


def pairing_policy(profile: FirmwareProfile) -> PairingPolicy:
    own = frozenset(str(u) for u in profile.ble.match.service_uuids) if profile.ble else frozenset()
    return PairingPolicy(
        profile=profile.id,
        passkey=profile.behaviour.passkey,
        just_works=profile.behaviour.needs_bonding and not profile.behaviour.passkey,
        services=own | SUPPORT_SERVICES,
    )


class PairingAgent(ServiceInterface):
    """org.bluez.Agent1: answers BlueZ's questions while bonding with a device — only for a
    bound device, and only by the pairing method its firmware profile declares."""

    def __init__(
        self, prompt: PasskeyPrompt | None, allowed: Callable[[str], PairingPolicy | None]
    ) -> None:
        super().__init__("org.bluez.Agent1")
        self._prompt = prompt
        self._allowed = allowed
        self.requests: list[tuple[str, str]] = []  # (method, address), for biomed's log

    def _check(self, what: str, device: str) -> tuple[str, PairingPolicy]:
        address = address_from_path(device)
        self.requests.append((what, address))
        policy = self._allowed(address)
        if policy is None:
            # Only devices biomed bound to this station may bond with it.
            log.warning("pairing: %s asked to pair but is not bound to this station", address)
            raise DBusError(REJECTED, f"{address} is not bound to this station")
        return address, policy

    @staticmethod
    def _refuse(address: str, why: str) -> DBusError:
        log.warning("pairing: %s refused: %s", address, why)
        return DBusError(REJECTED, why)

    @method(name="Release")
    def release(self) -> NoReply:
        log.info("pairing agent released by BlueZ")

    @method(name="RequestPasskey")
    async def request_passkey(self, device: DBusObjectPath) -> DBusUInt32:
        address, policy = self._check("RequestPasskey", device)
        if not policy.passkey:
            raise self._refuse(address, f"profile {policy.profile} does not pair with a passkey")
        if self._prompt is None:
            raise DBusError(REJECTED, "this station has no screen to type a passkey on")
        passkey = await self._prompt(address)
        if passkey is None:
            log.info("pairing: passkey entry for %s cancelled", address)
            raise DBusError(CANCELED, "passkey entry cancelled")
        if not 0 <= passkey <= 999_999:
            raise DBusError(REJECTED, f"passkey {passkey} is not 0–999999")
        return passkey

    @method(name="RequestPinCode")
    def request_pin_code(self, device: DBusObjectPath) -> DBusStr:
        self._check("RequestPinCode", device)
        raise DBusError(REJECTED, "legacy PIN pairing is not supported for health devices")

    @method(name="DisplayPasskey")
    def display_passkey(
        self, device: DBusObjectPath, passkey: DBusUInt32, entered: DBusUInt16
    ) -> NoReply:
        self._check("DisplayPasskey", device)

    @method(name="DisplayPinCode")
    def display_pin_code(self, device: DBusObjectPath, pincode: DBusStr) -> NoReply:
        self._check("DisplayPinCode", device)

    @method(name="RequestConfirmation")
    def request_confirmation(self, device: DBusObjectPath, passkey: DBusUInt32) -> NoReply:
        # Numeric comparison needs a person comparing two screens; no station profile pairs
        # that way, and a yes without looking would let any passkey through.
        address, policy = self._check("RequestConfirmation", device)
        raise self._refuse(
            address, f"profile {policy.profile} does not pair by numeric comparison"
        )

    @method(name="RequestAuthorization")
    def request_authorization(self, device: DBusObjectPath) -> NoReply:
        address, policy = self._check("RequestAuthorization", device)
        if not policy.just_works:
            raise self._refuse(
                address, f"profile {policy.profile} does not bond without a passkey"
            )

    @method(name="AuthorizeService")
    def authorize_service(self, device: DBusObjectPath, uuid: DBusStr) -> NoReply:
        address, policy = self._check("AuthorizeService", device)
        if uuid128(str(uuid)) not in policy.services:
            raise self._refuse(address, f"service {uuid} is not one of profile "
                               f"{policy.profile}'s")

    @method(name="Cancel")
    def cancel(self) -> NoReply:
        log.info("BlueZ cancelled a pairing request")


class AgentRegistration:
    """The agent exported on the system bus and registered as BlueZ's default agent."""

    def __init__(self, bus: MessageBus, agent: PairingAgent, capability: Capability) -> None:
        self.bus = bus
        self.agent = agent
        self.capability = capability

    @classmethod
    async def register(
        cls,
        bindings: Iterable[BoundDevice] | Callable[[], Iterable[BoundDevice]],
        *,
        prompt: PasskeyPrompt | None = None,
        profiles: Mapping[str, FirmwareProfile] | None = None,
    ) -> AgentRegistration:
        """Register the agent; only the Bluetooth addresses in `bindings` may bond.

        Pass `BindingStore(...).list` (a callable) so a device biomed binds later may pair
        without restarting the agent; a plain list is read once. There is no allow-all.
        """
        capability = Capability.KEYBOARD_ONLY if prompt else Capability.NO_INPUT_NO_OUTPUT
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        agent = PairingAgent(prompt, bound_addresses(bindings, profiles))
        bus.export(AGENT_PATH, agent)
        try:
            await _call(bus, "RegisterAgent", "os", [AGENT_PATH, str(capability)])
            await _call(bus, "RequestDefaultAgent", "o", [AGENT_PATH])
        except BaseException:
            bus.disconnect()
            await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
            raise
        return cls(bus, agent, capability)

    async def unregister(self) -> None:
        try:
            await _call(self.bus, "UnregisterAgent", "o", [AGENT_PATH])
        finally:
            self.bus.disconnect()
            await self.bus.wait_for_disconnect()  # type: ignore[no-untyped-call]


def bound_addresses(
    bindings: Iterable[BoundDevice] | Callable[[], Iterable[BoundDevice]],
    profiles: Mapping[str, FirmwareProfile] | None = None,
) -> Callable[[str], PairingPolicy | None]:
    """`allowed(address)` for the agent: how this address may pair if it is bound to the
    station (now), else None. A binding whose profile is not installed may not pair."""
    known = dict(load_profiles() if profiles is None else profiles)

    def policies(devices: Iterable[BoundDevice]) -> dict[str, PairingPolicy]:
        return {
            d.address.upper(): pairing_policy(known[d.profile])
            for d in devices
            if d.address is not None and d.profile in known
        }

    if callable(bindings):
        source = bindings
        return lambda address: policies(source()).get(address.upper())
    fixed = policies(bindings)
    return lambda address: fixed.get(address.upper())


async def _call(bus: MessageBus, member: str, signature: str, body: list[object]) -> None:
    reply = await bus.call(
        Message(
            destination="org.bluez",
            path="/org/bluez",
            interface="org.bluez.AgentManager1",
            member=member,
            signature=signature,
            body=body,
        )
    )
    if reply is None or reply.message_type is MessageType.ERROR:
        detail = reply.body[0] if reply is not None and reply.body else "no reply"
        name = reply.error_name if reply is not None else "no reply"
        raise RuntimeError(f"BlueZ refused AgentManager1.{member}: {name}: {detail}")
