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
print("docker-py ok")
