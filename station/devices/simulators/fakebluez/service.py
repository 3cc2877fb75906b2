"""A small org.bluez on a private bus: the D-Bus surface bleak and a pairing agent use.

It exposes, exactly as BlueZ 5.7x does, `org.bluez.Adapter1` on /org/bluez/hci0, one
`org.bluez.Device1` per simulated peripheral on /org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF, and on
connect `GattService1` / `GattCharacteristic1` objects on .../service000a/char000b, plus
`org.freedesktop.DBus.ObjectManager` on / and `AgentManager1` on /org/bluez. Adverts are
repeated while discovery runs (bleak only reports devices whose properties change),
notifications are PropertiesChanged on `Value`, and ServicesResolved=True follows Connect.

It runs its own asyncio loop in a thread, so a test, the demo or a benchmark can drive
simulated devices while bleak runs in another loop. Simulated peripherals act through
async hooks that run on that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.constants import RequestNameReply

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
ADAPTER_PATH = "/org/bluez/hci0"
ADAPTER_ADDRESS = "00:1A:7D:DA:71:01"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
PROPERTIES = "org.freedesktop.DBus.Properties"
ADAPTER = "org.bluez.Adapter1"
DEVICE = "org.bluez.Device1"
SERVICE = "org.bluez.GattService1"
CHARACTERISTIC = "org.bluez.GattCharacteristic1"
AGENT_MANAGER = "org.bluez.AgentManager1"
AGENT = "org.bluez.Agent1"

ERR_FAILED = "org.bluez.Error.Failed"
ERR_NOT_CONNECTED = "org.bluez.Error.NotConnected"
ERR_ALREADY_EXISTS = "org.bluez.Error.AlreadyExists"
ERR_AUTH_FAILED = "org.bluez.Error.AuthenticationFailed"
ERR_NOT_PERMITTED = "org.bluez.Error.NotPermitted"
ERR_NOT_SUPPORTED = "org.bluez.Error.NotSupported"
ERR_DOES_NOT_EXIST = "org.bluez.Error.DoesNotExist"
ERR_UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"

T = TypeVar("T")


def full_uuid(uuid: str) -> str:
    """`2a35` or `0x2A35` -> the 128-bit lower-case form BlueZ puts on the bus."""
    text = uuid.lower().removeprefix("0x")
    if len(text) == 4:
        return f"0000{text}-0000-1000-8000-00805f9b34fb"
    return text


class GattError(Exception):
    """Raised by a write hook to refuse a write, as a device's ATT error would."""

    def __init__(self, dbus_error: str, text: str) -> None:
        super().__init__(text)
        self.dbus_error = dbus_error
        self.text = text


WriteHook = Callable[[bytes], Coroutine[Any, Any, None]]
Hook = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class FakeCharacteristic:
    uuid: str
    flags: tuple[str, ...]
    value: bytes = b""
    on_write: WriteHook | None = None
    on_subscribe: Hook | None = None  # runs after StartNotify, like a device seeing its CCCD
    path: str = ""
    notifying: bool = False

    def __post_init__(self) -> None:
        self.uuid = full_uuid(self.uuid)


@dataclass
class FakeService:
    uuid: str
    characteristics: list[FakeCharacteristic]

    def __post_init__(self) -> None:
        self.uuid = full_uuid(self.uuid)


@dataclass
class FakePeripheral:
    """One simulated device as BlueZ sees it; the simulator sets the hooks and the state."""

    address: str
    name: str
    services: list[FakeService]
    advertised_uuids: list[str] = field(default_factory=list)
    passkey: int | None = None  # set: pairing needs this passkey typed on the station
    # set: pairing asks the agent to confirm this number (numeric comparison), as a device
    # with a display and a yes/no button would; a rogue device may try it on any station
    confirm_passkey: int | None = None
    # services the device asks the agent to authorise once paired (e.g. HID 0x1812); the
    # agent's answers are recorded in `authorized`
    authorize_services: list[str] = field(default_factory=list)
    authorized: dict[str, bool] = field(default_factory=dict)
    advertising: bool = True
    connectable: bool = True
    rssi: int = -58
    on_connected: Hook | None = None
    on_disconnected: Hook | None = None
    connected: bool = False
    paired: bool = False
    trusted: bool = False
    connect_count: int = 0
    path: str = ""

    def __post_init__(self) -> None:
        self.address = self.address.upper()
        self.advertised_uuids = [full_uuid(u) for u in self.advertised_uuids] or [
            s.uuid for s in self.services
        ]
        self.path = f"{ADAPTER_PATH}/dev_{self.address.replace(':', '_')}"
        handle = 0x000A
        for service in self.services:
            service_path = f"{self.path}/service{handle:04x}"
            handle += 1
            for char in service.characteristics:
                char.path = f"{service_path}/char{handle:04x}"
                # a real server also has a value and a CCCD handle per characteristic
                handle += 3 if {"notify", "indicate"} & set(char.flags) else 2
            handle += 1

    def char(self, uuid: str) -> FakeCharacteristic:
        wanted = full_uuid(uuid)
        for service in self.services:
            for char in service.characteristics:
                if char.uuid == wanted:
                    return char
        raise KeyError(f"{self.name} has no characteristic {uuid}")


@dataclass
class _Agent:
    owner: str  # unique bus name of the process that registered it
    path: str
    capability: str


class FakeBlueZ:
    """The fake org.bluez service. `start()` it, `add()` peripherals, drive them."""

    def __init__(self, bus_address: str, *, advert_interval_s: float = 0.05) -> None:
        self.bus_address = bus_address
        self.advert_interval_s = advert_interval_s
        self.peripherals: dict[str, FakePeripheral] = {}
        self.discovering = False
        self.discovery_uuids: list[str] = []
        self.agent: _Agent | None = None
        self.default_agent = False
        self.calls: list[tuple[str, str]] = []  # (path, member) of every method call, in order
        self._objects: dict[str, dict[str, dict[str, Variant]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._bus: MessageBus | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeBlueZ:
        self._thread = threading.Thread(target=self._run, name="fake-bluez", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"fake BlueZ did not start: {self._error}") from self._error
        if not self._ready.is_set():
            raise RuntimeError("fake BlueZ did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        bus = MessageBus(bus_address=self.bus_address, bus_type=BusType.SYSTEM)
        await bus.connect()
        self._bus = bus
        bus.add_message_handler(self._handle)
        reply = await bus.request_name(BLUEZ)
        if reply is not RequestNameReply.PRIMARY_OWNER:
            raise RuntimeError(f"could not own {BLUEZ} on the private bus: {reply}")
        self._objects["/org/bluez"] = {AGENT_MANAGER: {}}
        self._objects[ADAPTER_PATH] = {ADAPTER: self._adapter_props()}
        advertiser = asyncio.create_task(self._advertise())
        self._ready.set()
        await self._stopping.wait()
        advertiser.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await advertiser
        for task in list(self._tasks):
            task.cancel()
        bus.disconnect()
        await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]

    # ---- thread-safe driving -------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run a coroutine on the fake's loop from another thread and wait for it."""
        assert self._loop is not None, "start() the fake BlueZ first"
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        assert self._loop is not None, "start() the fake BlueZ first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def add(self, peripheral: FakePeripheral) -> FakePeripheral:
        async def _add() -> None:
            self.peripherals[peripheral.address] = peripheral

        self.run(_add())
        return peripheral

    def remove(self, address: str) -> None:
        self.run(self.remove_async(address))

    async def remove_async(self, address: str) -> None:
        peripheral = self.peripherals.pop(address.upper(), None)
        if peripheral is None:
            return
        if peripheral.connected:
            await self.drop(peripheral)
        if peripheral.path in self._objects:
            self._remove_object(peripheral.path)

    # ---- what simulated devices do (call on the fake's loop) ---------------------------

    async def notify(self, peripheral: FakePeripheral, uuid: str, value: bytes) -> bool:
        """Send one notification/indication; False when nobody is subscribed or connected."""
        char = peripheral.char(uuid)
        char.value = bytes(value)
        if not (peripheral.connected and char.notifying):
            return False
        self._set_props(char.path, CHARACTERISTIC, {"Value": Variant("ay", char.value)})
        return True

    async def drop(self, peripheral: FakePeripheral) -> None:
        """The device goes away (sleeps, walks out of range, battery): link lost."""
        if not peripheral.connected:
            return
        peripheral.connected = False
        for service in peripheral.services:
            for char in service.characteristics:
                char.notifying = False
        self._set_props(
            peripheral.path,
            DEVICE,
            {"ServicesResolved": Variant("b", False), "Connected": Variant("b", False)},
        )
        for service in reversed(peripheral.services):
            for char in service.characteristics:
                self._remove_object(char.path)
            self._remove_object(char.path.rsplit("/", 1)[0])
        if peripheral.on_disconnected is not None:
            self._spawn(peripheral.on_disconnected())

    async def set_advertising(self, peripheral: FakePeripheral, on: bool) -> None:
        peripheral.advertising = on

    # ---- internals ---------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("fake BlueZ hook failed: %r", t.exception())

        task.add_done_callback(done)

    def _adapter_props(self) -> dict[str, Variant]:
        return {
            "Address": Variant("s", ADAPTER_ADDRESS),
            "AddressType": Variant("s", "public"),
            "Name": Variant("s", "station"),
            "Alias": Variant("s", "station"),
            "Class": Variant("u", 0),
            "Powered": Variant("b", True),
            "Discoverable": Variant("b", False),
            "Pairable": Variant("b", True),
            "PairableTimeout": Variant("u", 0),
            "DiscoverableTimeout": Variant("u", 180),
            "Discovering": Variant("b", False),
            "UUIDs": Variant("as", []),
            "Modalias": Variant("s", "usb:v1D6Bp0246d0548"),
            "Roles": Variant("as", ["central", "peripheral"]),
        }

    def _device_props(self, p: FakePeripheral) -> dict[str, Variant]:
        return {
            "Address": Variant("s", p.address),
            "AddressType": Variant("s", "public"),
            "Name": Variant("s", p.name),
            "Alias": Variant("s", p.name),
            "Paired": Variant("b", p.paired),
            "Bonded": Variant("b", p.paired),
            "Trusted": Variant("b", p.trusted),
            "Blocked": Variant("b", False),
            "LegacyPairing": Variant("b", False),
            "Connected": Variant("b", p.connected),
            "ServicesResolved": Variant("b", False),
            "UUIDs": Variant("as", list(p.advertised_uuids)),
            "Adapter": Variant("o", ADAPTER_PATH),
            "RSSI": Variant("n", p.rssi),
        }

    def _emit(
        self, path: str, interface: str, member: str, signature: str, body: list[Any]
    ) -> None:
        assert self._bus is not None
        self._bus.send(Message.new_signal(path, interface, member, signature, body))

    def _add_object(self, path: str, interfaces: dict[str, dict[str, Variant]]) -> None:
        self._objects[path] = interfaces
        self._emit("/", OBJECT_MANAGER, "InterfacesAdded", "oa{sa{sv}}", [path, interfaces])

    def _remove_object(self, path: str) -> None:
        interfaces = self._objects.pop(path, None)
        if interfaces is not None:
            self._emit("/", OBJECT_MANAGER, "InterfacesRemoved", "oas", [path, list(interfaces)])

    def _set_props(self, path: str, interface: str, changed: dict[str, Variant]) -> None:
        props = self._objects.get(path, {}).get(interface)
        if props is None:
            return
        props.update(changed)
        self._emit(path, PROPERTIES, "PropertiesChanged", "sa{sv}as", [interface, changed, []])

    async def _advertise(self) -> None:
        # Real BlueZ reports each advert as a Device1 property change (RSSI, at least);
        # bleak's scanner only hears about devices whose properties change.
        tick = 0
        while True:
            await asyncio.sleep(self.advert_interval_s)
            if not self.discovering:
                continue
            tick += 1
            for p in list(self.peripherals.values()):
                if not p.advertising or p.connected:
                    continue
                if self.discovery_uuids and not set(self.discovery_uuids) & set(p.advertised_uuids):
                    continue
                if p.path not in self._objects:
                    self._add_object(p.path, {DEVICE: self._device_props(p)})
                else:
                    self._set_props(p.path, DEVICE, {"RSSI": Variant("n", p.rssi - tick % 2)})

    def _peripheral_at(self, path: str) -> FakePeripheral | None:
        for p in self.peripherals.values():
            if path == p.path:
                return p
        return None

    def _char_at(self, path: str) -> tuple[FakePeripheral, FakeCharacteristic] | None:
        for p in self.peripherals.values():
            if path.startswith(p.path + "/"):
                for service in p.services:
                    for char in service.characteristics:
                        if char.path == path:
                            return p, char
        return None

    # ---- D-Bus method calls ------------------------------------------------------------

    def _handle(self, msg: Message) -> Message | bool | None:
        if msg.message_type is not MessageType.METHOD_CALL:
            return None
        path, member, iface = msg.path or "", msg.member or "", msg.interface or ""
        self.calls.append((path, member))
        if iface == OBJECT_MANAGER and member == "GetManagedObjects":
            return Message.new_method_return(msg, "a{oa{sa{sv}}}", [self._objects])
        if iface == PROPERTIES:
            return self._properties_call(msg)
        if iface == ADAPTER and path == ADAPTER_PATH:
            return self._adapter_call(msg)
        if iface == AGENT_MANAGER and path == "/org/bluez":
            return self._agent_manager_call(msg)
        if iface == DEVICE and (p := self._peripheral_at(path)) is not None:
            self._spawn(self._device_call(msg, p))
            return True
        if iface == CHARACTERISTIC and (found := self._char_at(path)) is not None:
            self._spawn(self._characteristic_call(msg, *found))
            return True
        if path in self._objects or path.startswith("/org/bluez"):
            return Message.new_error(msg, ERR_UNKNOWN_METHOD, f"{iface}.{member} on {path}")
        return None

    def _properties_call(self, msg: Message) -> Message:
        path = msg.path or ""
        props = self._objects.get(path)
        if props is None:
            return Message.new_error(msg, ERR_DOES_NOT_EXIST, f"no object {path}")
        iface = msg.body[0]
        if msg.member == "GetAll":
            return Message.new_method_return(msg, "a{sv}", [props.get(iface, {})])
        if msg.member == "Get":
            value = props.get(iface, {}).get(msg.body[1])
            if value is None:
                return Message.new_error(msg, ERR_DOES_NOT_EXIST, f"no property {msg.body[1]}")
            return Message.new_method_return(msg, "v", [value])
        if msg.member == "Set" and iface == DEVICE and msg.body[1] == "Trusted":
            p = self._peripheral_at(path)
            assert p is not None
            p.trusted = bool(msg.body[2].value)
            self._set_props(path, DEVICE, {"Trusted": Variant("b", p.trusted)})
            return Message.new_method_return(msg)
        return Message.new_error(msg, ERR_NOT_PERMITTED, f"{msg.member} not supported here")

    def _adapter_call(self, msg: Message) -> Message:
        member = msg.member
        if member == "SetDiscoveryFilter":
            filters: dict[str, Variant] = msg.body[0]
            uuids = filters.get("UUIDs")
            self.discovery_uuids = [full_uuid(u) for u in uuids.value] if uuids else []
            return Message.new_method_return(msg)
        if member in ("StartDiscovery", "StopDiscovery"):
            self.discovering = member == "StartDiscovery"
            self._set_props(ADAPTER_PATH, ADAPTER, {"Discovering": Variant("b", self.discovering)})
            return Message.new_method_return(msg)
        if member == "GetDiscoveryFilters":
            return Message.new_method_return(
                msg, "as", [["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData"]]
            )
        if member == "RemoveDevice":
            p = self._peripheral_at(msg.body[0])
            if p is None or p.path not in self._objects:
                return Message.new_error(msg, ERR_DOES_NOT_EXIST, "no such device")
            p.paired = False
            self._remove_object(p.path)
            return Message.new_method_return(msg)
        return Message.new_error(msg, ERR_UNKNOWN_METHOD, f"Adapter1.{member}")

    def _agent_manager_call(self, msg: Message) -> Message:
        if msg.member == "RegisterAgent":
            if self.agent is not None:
                return Message.new_error(msg, ERR_ALREADY_EXISTS, "an agent is registered")
            self.agent = _Agent(owner=msg.sender or "", path=msg.body[0], capability=msg.body[1])
            return Message.new_method_return(msg)
        if msg.member == "UnregisterAgent":
            if self.agent is None or self.agent.path != msg.body[0]:
                return Message.new_error(msg, ERR_DOES_NOT_EXIST, "agent not registered")
            self.agent = None
            self.default_agent = False
            return Message.new_method_return(msg)
        if msg.member == "RequestDefaultAgent":
            if self.agent is None or self.agent.path != msg.body[0]:
                return Message.new_error(msg, ERR_DOES_NOT_EXIST, "agent not registered")
            self.default_agent = True
            return Message.new_method_return(msg)
        return Message.new_error(msg, ERR_UNKNOWN_METHOD, f"AgentManager1.{msg.member}")

    def _reply(self, reply: Message) -> None:
        assert self._bus is not None
        self._bus.send(reply)

    async def _device_call(self, msg: Message, p: FakePeripheral) -> None:
        member = msg.member
        if member == "Connect":
            error = await self._connect(p)
            self._reply(Message.new_error(msg, *error) if error else Message.new_method_return(msg))
        elif member == "Disconnect":
            await self.drop(p)
            self._reply(Message.new_method_return(msg))
        elif member == "Pair":
            error = await self._pair(p)
            if error is None:
                error = await self._connect(p)
            self._reply(Message.new_error(msg, *error) if error else Message.new_method_return(msg))
        elif member == "CancelPairing":
            self._reply(Message.new_method_return(msg))
        else:
            self._reply(Message.new_error(msg, ERR_UNKNOWN_METHOD, f"Device1.{member}"))

    async def _connect(self, p: FakePeripheral) -> tuple[str, str] | None:
        if p.connected:
            return None
        if not (p.advertising and p.connectable):
            # What BlueZ answers when the device does not respond to the connect request.
            return ERR_FAILED, "Software caused connection abort"
        p.connected = True
        p.connect_count += 1
        self._set_props(p.path, DEVICE, {"Connected": Variant("b", True)})
        for service in p.services:
            service_path = service.characteristics[0].path.rsplit("/", 1)[0]
            self._add_object(
                service_path,
                {
                    SERVICE: {
                        "UUID": Variant("s", service.uuid),
                        "Device": Variant("o", p.path),
                        "Primary": Variant("b", True),
                        "Includes": Variant("ao", []),
                    }
                },
            )
            for char in service.characteristics:
                self._add_object(
                    char.path,
                    {
                        CHARACTERISTIC: {
                            "UUID": Variant("s", char.uuid),
                            "Service": Variant("o", service_path),
                            "Value": Variant("ay", char.value),
                            "Notifying": Variant("b", False),
                            "Flags": Variant("as", list(char.flags)),
                            "MTU": Variant("q", 247),
                        }
                    },
                )
        self._set_props(p.path, DEVICE, {"ServicesResolved": Variant("b", True)})
        if p.on_connected is not None:
            self._spawn(p.on_connected())
        return None

    async def _pair(self, p: FakePeripheral) -> tuple[str, str] | None:
        if p.paired:
            return ERR_ALREADY_EXISTS, "Already Exists"
        if p.passkey is not None:
            agent = self.agent
            if agent is None or agent.capability == "NoInputNoOutput":
                return ERR_AUTH_FAILED, "Authentication Failed"
            assert self._bus is not None
            reply = await self._bus.call(
                Message(
                    destination=agent.owner,
                    path=agent.path,
                    interface=AGENT,
                    member="RequestPasskey",
                    signature="o",
                    body=[p.path],
                )
            )
            if reply is None or reply.message_type is MessageType.ERROR:
                return ERR_AUTH_FAILED, "Authentication Canceled"
            if int(reply.body[0]) != p.passkey:
                return ERR_AUTH_FAILED, "Authentication Failed"
        if p.confirm_passkey is not None:
            refused = await self._ask_agent("RequestConfirmation", "ou",
                                            [p.path, p.confirm_passkey])
            if refused:
                return ERR_AUTH_FAILED, "Authentication Rejected"
        for uuid in p.authorize_services:
            p.authorized[uuid] = not await self._ask_agent(
                "AuthorizeService", "os", [p.path, full_uuid(uuid)])
        p.paired = True
        self._set_props(
            p.path, DEVICE, {"Paired": Variant("b", True), "Bonded": Variant("b", True)}
        )
        return None

    async def _ask_agent(self, member: str, signature: str, body: list[object]) -> bool:
        """Ask the registered agent; True when it refused (or there is none)."""
        agent = self.agent
        if agent is None:
            return True
        assert self._bus is not None
        reply = await self._bus.call(
            Message(destination=agent.owner, path=agent.path, interface=AGENT, member=member,
                    signature=signature, body=body)
        )
        return reply is None or reply.message_type is MessageType.ERROR

    async def _characteristic_call(
        self, msg: Message, p: FakePeripheral, char: FakeCharacteristic
    ) -> None:
        member = msg.member
        if not p.connected:
            self._reply(Message.new_error(msg, ERR_NOT_CONNECTED, "Not connected"))
            return
        if member == "ReadValue":
            if "read" not in char.flags:
                self._reply(Message.new_error(msg, ERR_NOT_PERMITTED, "Read not permitted"))
                return
            self._reply(Message.new_method_return(msg, "ay", [char.value]))
        elif member == "WriteValue":
            if not {"write", "write-without-response"} & set(char.flags):
                self._reply(Message.new_error(msg, ERR_NOT_PERMITTED, "Write not permitted"))
                return
            data = bytes(msg.body[0])
            try:
                if char.on_write is not None:
                    await char.on_write(data)
                else:
                    char.value = data
            except GattError as exc:
                self._reply(Message.new_error(msg, exc.dbus_error, exc.text))
                return
            self._reply(Message.new_method_return(msg))
        elif member == "StartNotify":
            if not {"notify", "indicate"} & set(char.flags):
                self._reply(Message.new_error(msg, ERR_NOT_SUPPORTED, "Operation is not supported"))
                return
            char.notifying = True
            self._set_props(char.path, CHARACTERISTIC, {"Notifying": Variant("b", True)})
            self._reply(Message.new_method_return(msg))
            if char.on_subscribe is not None:
                self._spawn(char.on_subscribe())
        elif member == "StopNotify":
            char.notifying = False
            self._set_props(char.path, CHARACTERISTIC, {"Notifying": Variant("b", False)})
            self._reply(Message.new_method_return(msg))
        else:
            self._reply(Message.new_error(msg, ERR_UNKNOWN_METHOD, f"GattCharacteristic1.{member}"))
