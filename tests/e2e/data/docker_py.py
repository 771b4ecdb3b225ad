"""docker-py (the Docker SDK for Python) against `berth daemon`: the SDK's
common paths, each checked."""
import sys
import time

import docker

client = docker.DockerClient(base_url=sys.argv[1])
assert client.ping()
assert client.version()["Components"][0]["Name"] == "Engine"
# run, attached and removed
assert client.containers.run("busybox", "echo hi", network_mode="none", remove=True) == b"hi\n"
# a failing run raises with its exit code and stderr
try:
    client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], network_mode="none")
    raise SystemExit("a failing run did not raise")
except docker.errors.ContainerError as e:
    assert e.exit_status == 3, e
# detached: list, exec_run, logs, reload, stop, remove
ct = client.containers.run(
    "busybox", ["sh", "-c", "echo log1; sleep 100"], detach=True, network_mode="none", name="py1"
)
assert [c.name for c in client.containers.list()] == ["py1"]
r = ct.exec_run(["sh", "-c", "echo from exec; exit 4"])
assert (r.exit_code, r.output) == (4, b"from exec\n"), r
for _ in range(100):
    if ct.logs() == b"log1\n":
        break
    time.sleep(0.05)
assert ct.logs() == b"log1\n", ct.logs()
ct.reload()
assert ct.status == "running", ct.status
ct.stop(timeout=1)
ct.reload()
assert ct.status == "exited", ct.status
ct.remove()
for c in client.containers.list(all=True):
    c.remove(force=True)
assert ["busybox:latest"] in [i.tags for i in client.images.list()]
try:
    client.containers.get("nosuch")
    raise SystemExit("a missing container was found")
except docker.errors.NotFound:
    pass
# logs, streamed as they come
ct = client.containers.run(
    "busybox", ["sh", "-c", "echo one; sleep 0.5; echo two"], detach=True, network_mode="none"
)
chunks = list(ct.logs(stream=True, follow=True))
assert b"".join(chunks) == b"one\ntwo\n", chunks
ct.remove()
t0 = int(time.time())
# networks: created, joined by a container that peers find by name, removed
net = client.networks.create("pynet", driver="bridge")
assert "pynet" in [n.name for n in client.networks.list()]
srv = client.containers.run("busybox", "sleep 60", detach=True, name="pysrv")
net.connect(srv, aliases=["db"])
out = client.containers.run("busybox", "ping -c1 -W2 db", network="pynet", remove=True)
assert b"1 packets received" in out, out
net.reload()
assert [c.name for c in net.containers] == ["pysrv"], net.attrs
net.disconnect(srv)
net.reload()
assert net.containers == [], net.attrs
srv.remove(force=True)
net.remove()
# volumes: created with labels, written by one container, read by the next
vol = client.volumes.create("pyvol", labels={"k": "v"})
mount = {"pyvol": {"bind": "/v", "mode": "rw"}}
client.containers.run(
    "busybox", ["sh", "-c", "echo data > /v/f"], volumes=mount, network_mode="none", remove=True
)
assert client.containers.run("busybox", "cat /v/f", volumes=mount, network_mode="none", remove=True) == b"data\n"
assert client.volumes.get("pyvol").attrs["Labels"] == {"k": "v"}
assert "pyvol" in [v.name for v in client.volumes.list()]
vol.remove()
# events: what happened to the volume and the network, filtered
events = client.events(since=t0, until=int(time.time()) + 1, decode=True, filters={"type": ["volume", "network"]})
seen = [(e["Type"], e["Action"]) for e in events if e["Type"] == "volume"]
assert seen[0] == ("volume", "create") and seen[-1] == ("volume", "destroy"), seen
nets = [e["Action"] for e in client.events(since=t0, until=int(time.time()) + 1, decode=True, filters={"type": "network", "network": "pynet", "event": ["create", "destroy"]})]
assert nets == ["create", "destroy"], nets
print("docker-py ok")
