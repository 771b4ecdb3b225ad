"""docker-py's images.build against `berth daemon`, and contexts a hostile
client sends: a link out of the context with a file written through it, and
a Dockerfile that is a link to a host file."""
import io
import os
import sys
import tarfile

import docker

client = docker.DockerClient(base_url=sys.argv[1])
work = sys.argv[2]

ctx = os.path.join(work, "pyctx")
os.makedirs(ctx)
with open(os.path.join(ctx, "Dockerfile"), "w") as f:
    f.write("FROM busybox\nARG WHO\nRUN echo \"built by $WHO\" > /who\nLABEL kind=py\n")
image, logs = client.images.build(path=ctx, tag="pyapp", buildargs={"WHO": "docker-py"}, rm=True)
assert "pyapp:latest" in image.tags, image.tags
assert image.labels.get("kind") == "py", image.labels
assert any("Successfully built" in l.get("stream", "") for l in logs), list(logs)
out = client.containers.run("pyapp", "cat /who", network_mode="none", remove=True)
assert out == b"built by docker-py\n", out

# A failing build raises BuildError with the step's message.
with open(os.path.join(ctx, "Dockerfile"), "w") as f:
    f.write("FROM busybox\nRUN exit 7\n")
try:
    client.images.build(path=ctx, tag="pybad")
    raise SystemExit("a failing build did not raise")
except docker.errors.BuildError as e:
    assert "non-zero code: 7" in str(e), e


def hostile(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def build_lines(fileobj, **kw):
    return list(client.api.build(fileobj=fileobj, custom_context=True, decode=True, **kw))


victim = os.path.join(work, "victim")
os.makedirs(victim)
# A link to a host directory, then a file through it.
lines = build_lines(
    hostile([
        ("Dockerfile", "file", b"FROM busybox\n"),
        ("out", "link", victim),
        ("out/planted", "file", b"pwned"),
    ])
)
assert "error" in lines[-1], lines
assert not os.path.exists(os.path.join(victim, "planted"))

# A Dockerfile that is a link to a host file: not read.
lines = build_lines(
    hostile([("Dockerfile", "link", "/etc/shadow")]),
)
assert "error" in lines[-1], lines
assert "Cannot locate specified Dockerfile" in lines[-1]["error"], lines
assert "root:" not in str(lines), lines
# ... nor one named outside the context.
lines = build_lines(hostile([("Dockerfile", "file", b"FROM busybox\n")]), dockerfile="../../../etc/shadow")
assert "error" in lines[-1] and "root:" not in str(lines), lines

client.images.remove("pyapp")
print("docker-py build ok")
