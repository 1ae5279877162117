"""Self-tests of the Koji hub stand-in: the real koji client library must work against it."""

from __future__ import annotations

import hashlib
import json

import koji
import pytest
import requests
import urllib3

from shared.files import sha256_file
from standins.koji_hub import KojiHub

PUNGI_SAMPLE = "pungi__tests-test_koji_wrapper__getTaskChildren_getTaskResult_12387273_" \
    "Fedora-Cloud-Base-23.json"
TASK_SAMPLE = "koji-fedoramessaging__tests-test_task__expected_task_state_change_bodies.json"
BUILD_SAMPLE = "koji-fedoramessaging-messages__tests-test_build__buildsys.build.state.change__" \
    "livemedia.json"


def _sample(samples_dir, name):
    return json.loads((samples_dir / name).read_text())["data"]


def test_stop_refuses_connections_and_start_serves_on_the_same_port():
    hub = KojiHub()
    try:
        port = hub.port
        assert hub.client().getKojiVersion() == hub.koji_version
        hub.stop()
        with pytest.raises(requests.exceptions.ConnectionError):
            hub.client().getKojiVersion()
        hub.start()
        assert hub.port == port
        assert hub.client().getAPIVersion() == koji.API_VERSION
        # the refused call never reached the hub: one request before the stop, one after
        assert [c.method for c in hub.calls] == ["getKojiVersion", "getAPIVersion"]
    finally:
        hub.close()


def test_task_info_children_results_match_real_shapes(koji_hub, samples_dir):
    tid = koji_hub.add_image_task(release="20261125.n.0", arches=["x86_64", "aarch64"])
    s = koji_hub.client()
    info = s.getTaskInfo(tid, request=True)
    assert info["method"] == "image" and info["state"] == koji.TASK_STATES["CLOSED"]
    assert info["parent"] is None and info["owner"] == koji_hub.users["releng"]["id"]
    assert info["request"][0] == "Fedora-Cloud-Base" and info["request"][2] == ["x86_64",
                                                                                "aarch64"]
    assert "request" not in s.getTaskInfo(tid)
    assert s.getTaskInfo(999) is None
    with pytest.raises(koji.GenericError):
        s.getTaskInfo(999, strict=True)

    pungi = _sample(samples_dir, PUNGI_SAMPLE)
    real_child = pungi["getTaskChildren(12387273, request=True)"]["12387273"][0]
    children = s.getTaskChildren(tid, request=True)
    assert sorted(c["arch"] for c in children) == ["aarch64", "x86_64"]
    for child in children:
        assert child["method"] == "createImage" and child["parent"] == tid
        # every field the real hub returned is there (the real one also had 'weight', 'label')
        assert set(real_child) - set(child) == set(), set(real_child) - set(child)
        assert len(child["request"]) == len(real_child["request"])
        result = s.getTaskResult(child["id"])
        assert set(result) == set(pungi["getTaskResult"]["12387276"])
        assert result["task_id"] == child["id"] and result["arch"] == child["arch"]
        assert result["release"] == "20261125.n.0"
        assert f"Fedora-Cloud-Base-Rawhide-20261125.n.0.{child['arch']}.raw.xz" in result["files"]
        out = s.listTaskOutput(child["id"], stat=True)
        assert set(result["files"]) | set(result["logs"]) == set(out)
        assert all(isinstance(v["st_size"], str) for v in out.values())
        assert sorted(s.listTaskOutput(child["id"])) == sorted(out)


def test_task_result_of_unfinished_and_failed_tasks(koji_hub):
    s = koji_hub.client()
    open_tid = koji_hub.add_image_task(state=koji.TASK_STATES["OPEN"])
    with pytest.raises(koji.GenericError, match="not finished"):
        s.getTaskResult(open_tid)
    failed = koji_hub.add_image_task(state=koji.TASK_STATES["FAILED"])
    with pytest.raises(koji.GenericError, match="failed"):
        s.getTaskResult(failed)


def test_multicall_new_and_legacy(koji_hub):
    tid = koji_hub.add_image_task(arches=["x86_64", "aarch64"])
    s = koji_hub.client()
    children = s.getTaskChildren(tid)
    with s.multicall() as m:
        results = [m.getTaskResult(c["id"]) for c in children]
        bad = m.getTaskResult(123)
    assert [r.result["task_id"] for r in results] == [c["id"] for c in children]
    with pytest.raises(koji.GenericError, match="No such task"):
        _ = bad.result

    s.multicall = True
    s.getTaskInfo(tid)
    s.getTaskResult(123)
    raw = s.multiCall()
    assert raw[0][0]["id"] == tid
    assert raw[1]["faultCode"] == koji.GenericError.faultCode
    inner = [c for c in koji_hub.calls if c.multicall]
    assert [c.method for c in inner][-2:] == ["getTaskInfo", "getTaskResult"]
    assert len(koji_hub.calls_to("multiCall")) == 2


def test_pathinfo_urls_serve_files_with_recorded_sha256(koji_hub, tmp_path):
    image = tmp_path / "img.raw.xz"
    image.write_bytes(hashlib.sha256(b"seed").digest() * 50_000)  # 1.6 MB
    bid = koji_hub.add_image_build(files={"x86_64": {"Fedora-Cloud-Base-44.x86_64.raw.xz": image},
                                          "aarch64": {"Fedora-Cloud-Base-44.aarch64.qcow2":
                                                      b"qcow2 bytes"}},
                                   arches=["x86_64", "aarch64"])
    s = koji_hub.client()
    build = s.getBuild(bid)
    assert build["state"] == koji.BUILD_STATES["COMPLETE"] and build["owner_name"] == "releng"
    assert s.getBuild(build["nvr"])["id"] == bid
    assert s.getBuild("nope-1-1") is None
    with pytest.raises(koji.GenericError):
        s.getBuild("nope-1-1", strict=True)
    archives = s.listArchives(buildID=bid, type="image")
    assert {a["arch"] for a in archives} == {"x86_64", "aarch64"}
    assert all(a["checksum_type"] == koji.CHECKSUM_TYPES["sha256"] == 2 for a in archives)
    assert "arch" not in s.listArchives(buildID=bid)[0]
    assert [a["filename"] for a in s.listArchives(buildID=bid, type="image",
                                                  typeInfo={"arch": "aarch64"})] == [
        "Fedora-Cloud-Base-44.aarch64.qcow2"]
    pathinfo = koji.PathInfo(topdir=koji_hub.topurl)
    for a in archives:
        url = f"{pathinfo.imagebuild(build)}/{a['filename']}"
        assert url.startswith(f"{koji_hub.topurl}/packages/Fedora-Cloud-Base/")
        r = requests.get(url, timeout=5)
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == a["size"] == len(r.content)
        assert hashlib.sha256(r.content).hexdigest() == a["checksum"]
    assert a["type_name"] in ("raw-xz", "qcow2")

    # task outputs live at work/tasks/<id % 10000>/<id>/ (no zero padding)
    child = s.getTaskChildren(build["task_id"])[0]
    assert {c["method"] for c in s.getTaskChildren(build["task_id"])} == {"createImage",
                                                                            "tagBuild"}
    res = s.getTaskResult(child["id"])
    url = f"{pathinfo.task(child['id'])}/{res['files'][0]}"
    assert f"/work/tasks/{child['id'] % 10000}/{child['id']}/" in url
    body = requests.get(url, timeout=5).content
    assert hashlib.sha256(body).hexdigest() == sha256_file(koji_hub.file_path(url))
    assert requests.get(f"{koji_hub.topurl}/work/tasks/1/1/missing", timeout=5).status_code == 404


def test_build_image_oz_recorded_and_listed(koji_hub):
    koji_hub.add_user("fedimg", perms=["image"], password="secret")
    s = koji_hub.client(user="fedimg", password="secret")
    s.login()
    assert s.getLoggedInUser()["name"] == "fedimg"
    assert s.hasPerm("image") and not s.hasPerm("admin")
    opts = {"release": "weekly.20261125", "ksurl": "git+https://pagure.io/k.git#abc",
            "kickstart": "fedora-cloud-base.ks", "format": ["raw-xz"], "scratch": True}
    tid = s.buildImageOz("Fedora-Cloud-Base", "Rawhide", ["x86_64"], "f44", "https://x/os/",
                         opts=opts)
    assert isinstance(tid, int) and tid in koji_hub.tasks
    calls = koji_hub.calls_to("buildImageOz")
    assert len(calls) == 1 and calls[0].user == "fedimg"
    assert calls[0].kwargs["opts"]["release"] == "weekly.20261125"
    info = s.getTaskInfo(tid, request=True)
    assert info["state"] == koji.TASK_STATES["FREE"] and info["method"] == "image"
    assert info["request"][-1]["release"] == "weekly.20261125"

    me = s.getLoggedInUser()["id"]
    found = s.listTasks(opts={"owner": me, "method": "image", "decode": True,
                              "state": [koji.TASK_STATES[x] for x in ("FREE", "OPEN", "CLOSED")]},
                        queryOpts={"order": "-id"})
    assert [t["id"] for t in found] == [tid] and found[0]["request"][-1]["release"]
    raw = s.listTasks(opts={"owner": me, "method": "image"})
    assert isinstance(raw[0]["request"], str) and "<methodCall>" in raw[0]["request"]
    assert s.listTasks(opts={"owner": me, "method": "image", "state": [2]}) == []
    assert s.listTasks(opts={"owner": me}, queryOpts={"countOnly": True}) == 1

    lm = s.buildImage("Fedora-i3-Live", "Rawhide", "x86_64", "f44", "i3.ks", "livemedia", {})
    assert koji_hub.tasks[lm]["method"] == "livemedia"
    with pytest.raises(koji.GenericError, match="Unrecognized image type"):
        s.buildImage("x", "1", "x86_64", "f44", "x.ks", "iso")

    # a finished build for that task, as the trigger's e2e tests will need
    koji_hub.add_image_task(task_id=tid, files={"x86_64": {"a.raw.xz": b"x"}}, arches=["x86_64"])
    assert s.getTaskInfo(tid)["state"] == koji.TASK_STATES["CLOSED"]
    assert s.getTaskResult(s.getTaskChildren(tid)[0]["id"])["files"][0] == "a.raw.xz"


def test_image_permission_required(koji_hub):
    s = koji_hub.client()
    with pytest.raises(koji.ActionNotAllowed, match="image permission required"):
        s.buildImageOz("n", "v", ["x86_64"], "f44", "u", {})  # anonymous
    koji_hub.add_user("joe", password="pw")  # no permissions
    s = koji_hub.client(user="joe", password="pw")
    s.login()
    with pytest.raises(koji.ActionNotAllowed) as exc:
        s.buildImageOz("n", "v", ["x86_64"], "f44", "u", {})
    assert exc.value.faultCode == 1004 and "logged in as joe" in str(exc.value)
    assert not [t for t in koji_hub.tasks.values() if t["method"] == "image"]
    koji_hub.current_user = "kojiadmin"  # admin implies every permission
    assert isinstance(koji_hub.client().buildImageOz("n", "v", ["x86_64"], "f44", "u"), int)
    with pytest.raises(koji.AuthError):
        koji_hub.client(user="joe", password="wrong").login()


def test_ssl_login_with_client_cert(koji_hub_tls):
    hub = koji_hub_tls
    s = hub.client()
    s.ssl_login(cert=hub.client_cert("releng"), serverca=hub.ca_cert)
    assert s.getLoggedInUser()["name"] == "releng"
    tid = s.buildImageOz("Fedora-Cloud-Base", "Rawhide", ["x86_64"], "f44", "u", {})
    assert hub.calls_to("buildImageOz")[0].user == "releng" and tid in hub.tasks
    stranger = hub.client()
    with pytest.raises(koji.AuthError):
        stranger.ssl_login(cert=hub.client_cert("mallory"), serverca=hub.ca_cert)
    child = hub.tasks[hub.add_image_task()]["children"][0]
    url = hub.task_url(child, "oz-x86_64.log")
    assert url.startswith("https://") and requests.get(url, verify=hub.ca_cert).ok


def test_down_and_faults(koji_hub):
    s = koji_hub.client(max_retries=1, retry_interval=0.1, timeout=5)
    koji_hub.down = True
    koji_hub.requests.clear()
    with pytest.raises(requests.exceptions.HTTPError) as exc:
        s.getTaskInfo(1)
    assert exc.value.response.status_code == 503
    assert [m for m, _path in koji_hub.requests] == ["POST"]  # anonymous calls: no retry
    assert requests.get(f"{koji_hub.topurl}/work/x", timeout=5).status_code == 503
    koji_hub.down = False
    assert s.getKojiVersion()

    koji_hub.add_user("fedimg", perms=["image"], password="pw")
    logged = koji_hub.client(user="fedimg", password="pw", max_retries=2, retry_interval=0.1)
    logged.login()
    koji_hub.down = True
    koji_hub.requests.clear()
    with pytest.raises(requests.exceptions.HTTPError):
        logged.getLoggedInUser()  # logged-in sessions retry, bounded by max_retries
    assert len(koji_hub.requests) == 1 + 2  # the call and max_retries=2 retries, no more
    koji_hub.down = False

    koji_hub.inject_fault("getBuild", koji.GenericError("database is busy"), times=1)
    with pytest.raises(koji.GenericError, match="busy"):
        s.getBuild(1)
    assert s.getBuild(1) is None
    with pytest.raises(koji.GenericError, match="Invalid method"):
        s.noSuchMethod()
    with pytest.raises(koji.ParameterError):
        s.getTaskInfo()


def test_redirect_and_corruption(koji_hub):
    tid = koji_hub.add_image_task()
    child = koji_hub.tasks[tid]["children"][0]
    url = koji_hub.task_url(child, "Fedora-Cloud-Base-Rawhide-20261125.n.0.x86_64.raw.xz")
    good = requests.get(url, timeout=5).content
    koji_hub.redirect(url, "http://evil.example.com/x.raw.xz")
    r = requests.get(url, allow_redirects=False, timeout=5)
    assert r.status_code == 302 and r.headers["Location"] == "http://evil.example.com/x.raw.xz"
    koji_hub._redirects.clear()
    koji_hub.corrupt(url)
    bad = requests.get(url, timeout=5).content
    assert len(bad) == len(good) and bad != good
    koji_hub.corrupt(url, "truncate")
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url, timeout=5).content  # noqa: B018
    koji_hub.remove_file(url)
    assert requests.get(url, timeout=5).status_code == 404


def test_stall_holds_a_download_halfway_until_released(koji_hub):
    data = bytes(range(256)) * 8192  # 2 MiB
    url = koji_hub.add_file("work/tasks/1/1/stall.raw.xz", data)
    koji_hub.stalled.clear()
    koji_hub.unstalled.clear()
    koji_hub.corrupt(url, "stall")
    with requests.get(url, stream=True, timeout=10) as r:
        assert int(r.headers["Content-Length"]) == len(data)
        got = r.raw.read(len(data) // 2)
        assert got == data[: len(data) // 2]
        assert koji_hub.stalled.wait(10)  # held: the rest never comes until released
        koji_hub.unstalled.set()
        with pytest.raises(urllib3.exceptions.ProtocolError):  # then cut short
            r.raw.read()
    koji_hub.corrupt(url, None)
    assert requests.get(url, timeout=5).content == data


def test_message_bodies_match_real_samples(koji_hub, samples_dir):
    tid = koji_hub.add_image_task(arches=["x86_64", "aarch64"])
    body = koji_hub.task_state_change_body(tid)
    real = _sample(samples_dir, TASK_SAMPLE)["close"]
    assert set(body) == set(real)
    assert set(real["info"]) - {"host_name"} <= set(body["info"])
    assert body["new"] == "CLOSED" and body["owner"] == "releng" and body["method"] == "image"
    assert body["info"]["owner"] == "releng"
    kids = body["info"]["children"]
    assert {k["method"] for k in kids} == {"createImage"}
    assert all(k["result"]["task_id"] == k["id"] for k in kids)
    json.dumps(body)  # must be JSON-serialisable, as on the bus

    bid = koji_hub.add_image_build()
    bbody = koji_hub.build_state_change_body(bid)
    real_b = _sample(samples_dir, BUILD_SAMPLE)
    assert set(real_b) <= set(bbody)
    assert (bbody["new"], bbody["old"]) == (1, 0) and bbody["owner"] == "releng"
    assert bbody["task"]["id"] == bbody["task_id"] == koji_hub.builds[bid]["task_id"]
    real_child = next(c for c in real_b["task"]["children"] if c["method"] != "tagBuild")
    ours = next(c for c in bbody["task"]["children"] if c["method"] == "createImage")
    assert set(real_child["result"]) - {"rootdev"} <= set(ours["result"])
    json.dumps(bbody)
