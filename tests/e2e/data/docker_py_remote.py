"""docker-py's images.build with a context by URL (`remote=`): an archive,
a lone Dockerfile and a git repository (`#ref:subdir`), all served on
127.0.0.1 by the test; and a URL the daemon must not take."""
import sys

import docker

client = docker.DockerClient(base_url=sys.argv[1])
base = sys.argv[2]


def run(image, cmd):
    return client.containers.run(image, cmd, network_mode="none", remove=True)


image, _ = client.images.build(path=f"{base}/ctx.tar.gz", tag="fromtar")
assert run("fromtar", "cat /hello") == b"from the archive\n"
image, _ = client.images.build(path=f"{base}/Dockerfile.plain", tag="fromfile")
assert run("fromfile", "cat /p") == b"plain\n"
image, _ = client.images.build(path=f"{base}/repo.git#v1:web", tag="fromgit")
assert run("fromgit", "cat /site") == b"version one\n"
image, _ = client.images.build(path=f"{base}/repo.git#main:web", tag="fromgit2")
assert run("fromgit2", "cat /site") == b"version two\n"
for bad in [f"{base}/repo.git#v1:../..", f"{base}/missing.tar.gz"]:
    try:
        client.images.build(path=bad, tag="bad")
        raise SystemExit(f"{bad} built")
    except (docker.errors.BuildError, docker.errors.APIError):
        pass
for t in ["fromtar", "fromfile", "fromgit", "fromgit2"]:
    client.images.remove(t)
print("docker-py remote ok")
