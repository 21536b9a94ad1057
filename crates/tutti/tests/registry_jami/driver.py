#!/usr/bin/python3
"""Drives the real Jami daemon (Debian jami-daemon, /usr/libexec/jamid) over D-Bus against a name server.

Run under `dbus-run-session` inside a network namespace that has only loopback (registry_jami.rs does both).
Every step prints one JSON line on stdout; the Rust test reads them and decides what passed. The scenario:

  1. start jamid, create two Jami accounts (A and B) pointed at the name server (through different host
     names), everything that could reach the internet switched off;
  2. A registers --name (registerName -> nameRegistrationEnded);
  3. A resolves the name (lookupName -> registeredNameFound) and its own address back to the name (these
     may be answered from the daemon's cache);
  4. B, whose name server URL names another host (so another, empty cache), tries to take the same name
     (the daemon should report it as taken), resolves it, and a name nobody has;
  5. the address is resolved without an account on a third host (again an empty cache).

Only the daemon's public D-Bus API (cx.ring.Ring) is used.
"""

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import time

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

JAMID = "/usr/libexec/jamid"
BUS_NAME = "cx.ring.Ring"
CONFIG_PATH = "/cx/ring/Ring/ConfigurationManager"
CONFIG_IFACE = "cx.ring.Ring.ConfigurationManager"
STEP_TIMEOUT_S = 20


def emit(step, **fields):
    print(json.dumps(dict(step=step, **fields)), flush=True)


def plain(value):
    """D-Bus values as plain Python values (for JSON)."""
    if isinstance(value, (dbus.Int32, dbus.UInt32, dbus.Int64, dbus.UInt64, dbus.Int16, dbus.Byte)):
        return int(value)
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, dbus.Dictionary):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (dbus.Array, list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def account_details(alias, nameserver):
    """A Jami (RING) account that talks to nothing but the name server."""
    return {
        "Account.type": "RING",
        "Account.alias": alias,
        # The name server: the only thing this account is meant to reach.
        "RingNS.uri": nameserver,
        # DHT bootstrap: an empty value means the default public bootstrap node, so point it at a closed
        # local port instead.
        "Account.hostname": "127.0.0.1:1",
        # No router port mapping, no TURN relay, no DHT proxy (nor the list of proxies to fetch).
        "Account.upnpEnabled": "false",
        "TURN.enable": "false",
        "Account.proxyEnabled": "false",
        "Account.dhtProxyListUrl": "",
        # No announcing or discovering on the local network.
        "Account.peerDiscovery": "false",
        "Account.accountDiscovery": "false",
        "Account.accountPublish": "false",
        # No archive password: registerName is then called with an empty password.
        "Account.archivePassword": "",
    }


def die_with_parent():
    """jamid gets SIGKILL when this driver dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


class Daemon:
    def __init__(self, bus, log_path):
        self.bus = bus
        self.log_path = log_path
        self.process = None
        self.events = []
        self.loop = GLib.MainLoop()
        for name in ("registrationStateChanged", "nameRegistrationEnded", "registeredNameFound"):
            bus.add_signal_receiver(self._receiver(name), signal_name=name, dbus_interface=CONFIG_IFACE)

    def _receiver(self, name):
        def receive(*args):
            self.events.append((name, [plain(a) for a in args]))
            self.loop.quit()

        return receive

    def start(self):
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [JAMID, "--console", "--debug", "--persistent"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        emit("jamid_started", pid=self.process.pid)
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while not self.bus.name_has_owner(BUS_NAME):
            if self.process.poll() is not None:
                raise RuntimeError("jamid exited with %s before taking %s" % (self.process.returncode, BUS_NAME))
            if time.monotonic() > deadline:
                raise RuntimeError("jamid did not take the D-Bus name %s" % BUS_NAME)
            time.sleep(0.05)
        self.config = dbus.Interface(self.bus.get_object(BUS_NAME, CONFIG_PATH), CONFIG_IFACE)

    def stop(self):
        if self.process is None:
            return
        # SIGKILL: nothing of the daemon's is kept, and its clean shutdown waits about 9 s per account for
        # DHT peers that cannot exist here.
        self.process.kill()
        self.process.wait()
        emit("jamid_stopped", pid=self.process.pid)
        self.process = None

    def pump(self, seconds):
        """Runs the main loop (delivering signals) until a signal arrives or `seconds` pass."""
        fired = []

        def on_timer():
            fired.append(True)
            self.loop.quit()
            return False

        timer = GLib.timeout_add(max(1, int(seconds * 1000)), on_timer)
        self.loop.run()
        if not fired:
            GLib.source_remove(timer)

    def wait_for(self, what, predicate):
        """The first signal (name, args) matching `predicate`, consumed; waits at most STEP_TIMEOUT_S."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            for event in self.events:
                if predicate(*event):
                    self.events.remove(event)
                    return event[1]
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("timed out waiting for %s" % what)
            self.pump(min(left, 0.2))

    def wait_ready(self, account):
        """Until the account has its identity (Account.username) and has left INITIALIZING."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            details = self.config.getAccountDetails(account)
            volatile = self.config.getVolatileAccountDetails(account)
            state = str(volatile.get("Account.registrationStatus", ""))
            if str(details.get("Account.username", "")) and state not in ("", "INITIALIZING"):
                return str(details["Account.username"]), state
            if time.monotonic() > deadline:
                raise RuntimeError("account %s did not get ready (state %r)" % (account, state))
            self.pump(0.1)

    def register_name(self, account, name):
        self.events.clear()
        started = bool(self.config.registerName(account, "", name))
        if not started:
            return {"started": False}
        _, status, got_name = self.wait_for(
            "nameRegistrationEnded", lambda n, a: n == "nameRegistrationEnded" and a[0] == account
        )
        return {"started": True, "status": status, "name": got_name}

    def lookup(self, method, account, query, nameserver=""):
        """lookupName/lookupAddress; `nameserver` is only used by the daemon when `account` is ""."""
        self.events.clear()
        started = bool(getattr(self.config, method)(account, nameserver, query))
        if not started:
            return {"started": False}
        _, status, address, name = self.wait_for(
            "registeredNameFound", lambda n, a: n == "registeredNameFound" and a[0] == account
        )
        return {"started": True, "status": status, "address": address, "name": name}


def main():
    parser = argparse.ArgumentParser()
    # One name server, three spellings of its URL: the daemon keeps one answer cache per name server host
    # (on disk, $XDG_CACHE_HOME/namecache/HOST), and an answer about a name also fills in its address and
    # the other way round. A fresh host is a fresh cache, so the lookups there must ask the server.
    parser.add_argument("--nameserver-a", required=True, help="account A's name server URL")
    parser.add_argument("--nameserver-b", required=True, help="account B's URL for the same server, another host")
    parser.add_argument("--nameserver-c", required=True, help="a third host, for a lookup without an account")
    parser.add_argument("--name", required=True, help="the name account A registers (B then tries it too)")
    parser.add_argument("--home", required=True, help="an empty directory for the daemon's files")
    args = parser.parse_args()

    # All of the daemon's files (account keys, configuration, caches) in the test's directory.
    for var, sub in (("HOME", ""), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CACHE_HOME", "cache")):
        os.environ[var] = os.path.join(args.home, sub)
    os.environ.pop("XDG_RUNTIME_DIR", None)

    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    bus_pid = dbus.Interface(
        bus.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus"), "org.freedesktop.DBus"
    ).GetConnectionUnixProcessID("org.freedesktop.DBus")
    emit("driver", pid=os.getpid(), dbus_daemon_pid=int(bus_pid))

    daemon = Daemon(bus, os.path.join(args.home, "jamid.log"))
    try:
        daemon.start()
        started = time.monotonic()
        accounts = {}
        for alias, nameserver in (("A", args.nameserver_a), ("B", args.nameserver_b)):
            details = dbus.Dictionary(account_details(alias, nameserver), signature="ss")
            accounts[alias] = str(daemon.config.addAccount(details))
        addresses = {}
        for alias, account in accounts.items():
            addresses[alias], state = daemon.wait_ready(account)
            emit("account", alias=alias, id=account, address=addresses[alias], state=state,
                 seconds=round(time.monotonic() - started, 1))

        emit("register", alias="A", **daemon.register_name(accounts["A"], args.name))
        # A's daemon now has the name in its cache: these answers may not come from the server.
        emit("lookup_name", alias="A", **daemon.lookup("lookupName", accounts["A"], args.name))
        emit("lookup_address", alias="A", **daemon.lookup("lookupAddress", accounts["A"], addresses["A"]))
        # B's host has its own, empty cache. Registering first: a name B's daemon had in its cache would be
        # refused without asking the server.
        emit("register", alias="B", **daemon.register_name(accounts["B"], args.name))
        emit("lookup_name", alias="B", **daemon.lookup("lookupName", accounts["B"], args.name))
        emit("lookup_name", alias="B", **daemon.lookup("lookupName", accounts["B"], args.name + "-unknown"))
        # The address, on a third host: without an account, the URL is given with the call.
        emit("lookup_address", alias="", **daemon.lookup("lookupAddress", "", addresses["A"], args.nameserver_c))
        emit("done", seconds=round(time.monotonic() - started, 1))
    except Exception as error:  # reported to the test, which fails with it
        emit("error", message="%s: %s" % (type(error).__name__, error))
        return 1
    finally:
        daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
