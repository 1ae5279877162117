"""fedimg-build against the Koji hub stand-in (HTTPS, real client-certificate ssl_login)."""

from __future__ import annotations

import json

import koji
import pytest

from tests.trigger.conftest import LIVEMEDIA, MANUAL, NIGHTLY, WEEKLY
from trigger.cli import main

DATE = "2026-11-25"
TS_ON_DATE = 1795600000.0  # 2026-11-25T10:26:40Z


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out.splitlines(), err.strip().splitlines()


def started_tasks(hub, method="image"):
    return [t for t in hub.tasks.values() if t["method"] == method]


def one_error_line(err, *needles):
    assert len(err) == 1, err
    assert err[0].startswith("error: "), err
    for needle in needles:
        assert needle in err[0], (needle, err)
    assert "Traceback" not in err[0]


def test_weekly_starts_once_with_the_configured_request(make_config, koji_hub_tls, capsys):
    cfg = make_config([WEEKLY])
    rc, out, err = run(capsys, "--config", cfg, "--date", DATE, "--no-messages", WEEKLY["name"])
    assert rc == 0, err
    (call,) = koji_hub_tls.calls_to("buildImageOz")
    assert call.user == "releng"
    assert call.args == ("Fedora-Cloud-Base", "Rawhide", ["x86_64", "aarch64"], "f44",
                         WEEKLY["install_tree"])
    opts = call.kwargs["opts"]
    assert opts["release"] == "weekly.20261125"
    assert (opts["ksurl"], opts["kickstart"]) == (WEEKLY["ksurl"], WEEKLY["kickstart"])
    assert opts["format"] == ["raw-xz", "qcow2"] and opts["scratch"] is True
    assert opts["distro"] == "Fedora-44" and "repo" not in opts  # no repos: target's repo
    (task,) = started_tasks(koji_hub_tls)
    assert out == [f"started {WEEKLY['name']}: Fedora-Cloud-Base-Rawhide-weekly.20261125 task "
                   f"{task['id']} {koji_hub_tls.base_url}/koji/taskinfo?taskID={task['id']}"]

    rc, out, err = run(capsys, "--config", cfg, "--date", DATE, "--no-messages", WEEKLY["name"])
    assert rc == 0, err
    assert len(koji_hub_tls.calls_to("buildImageOz")) == 1
    assert out[0].startswith(f"exists {WEEKLY['name']}: task {task['id']} (free, ")
    assert out[0].endswith("nothing started")


def test_finished_build_of_the_same_nvr_counts_as_done(make_config, koji_hub_tls, capsys):
    koji_hub_tls.add_image_build("Fedora-Cloud-Base", "Rawhide", "weekly.20261125", task=False,
                                 owner="kojiadmin")
    rc, out, _ = run(capsys, "--config", make_config([WEEKLY]), "--date", DATE, "--no-messages")
    assert rc == 0
    assert koji_hub_tls.calls_to("buildImageOz") == []
    assert out[0].startswith(f"exists {WEEKLY['name']}: build ")


def test_a_failed_weekly_task_is_retried_with_the_same_release(make_config, koji_hub_tls,
                                                              capsys):
    request = ["Fedora-Cloud-Base", "Rawhide", ["x86_64"], "f44", "tree",
               {"release": "weekly.20261125", "scratch": True}]
    koji_hub_tls.add_task("image", request, state=koji.TASK_STATES["FAILED"],
                          create_ts=TS_ON_DATE)
    rc, _, _ = run(capsys, "--config", make_config([WEEKLY]), "--date", DATE, "--no-messages")
    assert rc == 0
    (call,) = koji_hub_tls.calls_to("buildImageOz")
    assert call.kwargs["opts"]["release"] == "weekly.20261125"


def test_nightly_respins(make_config, koji_hub_tls, capsys):
    cfg = make_config([NIGHTLY])
    argv = ["--config", cfg, "--date", DATE, "--no-messages", NIGHTLY["name"]]
    assert run(capsys, *argv)[0] == 0
    assert run(capsys, *argv)[0] == 0  # same day again: nothing
    assert run(capsys, *argv, "--force")[0] == 0  # forced: the next respin
    releases = [c.kwargs["opts"]["release"] for c in koji_hub_tls.calls_to("buildImageOz")]
    assert releases == ["20261125.n.0", "20261125.n.1"]
    assert [c.kwargs["opts"]["scratch"] for c in koji_hub_tls.calls_to("buildImageOz")] == [
        False, False]
    # the NVR was checked against Koji's builds before starting
    assert "Fedora-Cloud-Base-Generic-Rawhide-20261125.n.0" in [
        c.args[0] for c in koji_hub_tls.calls_to("getBuild")]


def test_nightly_after_a_failed_respin_takes_the_next_number(make_config, koji_hub_tls, capsys):
    def task(release, state, owner="releng"):
        request = ["Fedora-Cloud-Base-Generic", "Rawhide", ["x86_64"], "f44", "tree",
                   {"release": release}]
        koji_hub_tls.add_task("image", request, owner=owner, state=koji.TASK_STATES[state],
                              create_ts=TS_ON_DATE)

    task("20261125.n.0", "FAILED")
    task("20261125.n.1", "CANCELED")
    task("20261125.n.7", "OPEN", owner="kojiadmin")  # someone else's: neither blocks nor counts
    task("20261124.n.3", "CLOSED")  # yesterday's release
    rc, out, _ = run(capsys, "--config", make_config([NIGHTLY]), "--date", DATE, "--no-messages")
    assert rc == 0, out
    (call,) = koji_hub_tls.calls_to("buildImageOz")
    assert call.kwargs["opts"]["release"] == "20261125.n.2"


def test_dry_run_makes_no_hub_request_at_all(make_config, koji_hub_tls, capsys):
    cfg = make_config([WEEKLY, NIGHTLY, MANUAL])
    rc, out, err = run(capsys, "--config", cfg, "--date", DATE, "--dry-run")
    assert rc == 0, err
    assert koji_hub_tls.requests == [] and koji_hub_tls.calls == []
    assert len(out) == 2  # manual jobs only run when named
    assert out[0].startswith(f"would-start {WEEKLY['name']}: buildImageOz "
                             "Fedora-Cloud-Base-Rawhide-weekly.20261125 channel=weekly ")
    assert "Fedora-Cloud-Base-Generic-Rawhide-20261125.n.0 channel=nightly" in out[1]

    rc, out, _ = run(capsys, "--config", cfg, "--date", DATE, "--dry-run", "--json",
                     "--schedule", "weekly")
    assert rc == 0
    (line,) = out
    planned = json.loads(line)
    assert planned["action"] == "would-start" and planned["job"] == WEEKLY["name"]
    assert planned["hub_call"]["method"] == "buildImageOz"
    assert planned["hub_call"]["opts"]["release"] == "weekly.20261125"
    assert koji_hub_tls.requests == []


def test_schedule_selects_the_timer_jobs(make_config, capsys):
    cfg = make_config([WEEKLY, NIGHTLY, LIVEMEDIA, MANUAL])
    _, out, _ = run(capsys, "--config", cfg, "--dry-run", "--json", "--schedule", "nightly")
    assert [json.loads(line)["job"] for line in out] == [NIGHTLY["name"], LIVEMEDIA["name"]]


def test_release_candidate_overrides(make_config, koji_hub_tls, capsys):
    cfg = make_config([MANUAL])
    repos = ["https://kojipkgs.example.org/compose/42/Fedora-42-20261120.0/compose/"
             "Everything/$arch/os/", "https://example.org/extra/$arch/"]
    rc, out, err = run(capsys, "--config", cfg, "--date", DATE, "--no-messages", "--json",
                       "--repo", repos[0], "--repo", repos[1], "--release", "1.2",
                       "--name", "Fedora-Cloud-Base-RC", MANUAL["name"])
    assert rc == 0, err
    (call,) = koji_hub_tls.calls_to("buildImageOz")
    assert call.args[:2] == ("Fedora-Cloud-Base-RC", "42")
    assert call.kwargs["opts"]["repo"] == repos  # replaces the job's repos
    assert call.kwargs["opts"]["release"] == "1.2"
    result = json.loads(out[0])
    assert result["action"] == "started" and result["channel"] == "candidate"
    assert result["task_id"] == started_tasks(koji_hub_tls)[0]["id"]


def test_manual_job_without_release_gets_a_dated_respin(make_config, koji_hub_tls, capsys):
    rc, _, _ = run(capsys, "--config", make_config([MANUAL]), "--date", DATE, "--no-messages",
                   MANUAL["name"])
    assert rc == 0
    (call,) = koji_hub_tls.calls_to("buildImageOz")
    assert call.kwargs["opts"]["release"] == "20261125.0"
    assert call.kwargs["opts"]["repo"] == MANUAL["repos"]


def test_livemedia_goes_through_build_image(make_config, koji_hub_tls, capsys):
    cfg = make_config([LIVEMEDIA])
    argv = ["--config", cfg, "--date", DATE, "--no-messages", LIVEMEDIA["name"]]
    assert run(capsys, *argv)[0] == 0
    (call,) = koji_hub_tls.calls_to("buildImage")
    assert call.args == ("Fedora-Workstation-Live", "Rawhide", ["x86_64"], "f44",
                         "fedora-live-workstation.ks", "livemedia")
    assert call.kwargs["opts"] == {"ksurl": LIVEMEDIA["ksurl"], "release": "20261125.n.0",
                                   "scratch": True,
                                   "install_tree_url": LIVEMEDIA["install_tree"]}
    assert run(capsys, *argv)[0] == 0
    assert len(koji_hub_tls.calls_to("buildImage")) == 1


def test_user_without_the_image_permission(make_config, koji_hub_tls, capsys):
    rc, out, err = run(capsys, "--config", make_config([WEEKLY], user="nobody-special"),
                       "--date", DATE, "--no-messages")
    assert rc == 1
    one_error_line(err, "'image' permission", "nobody-special", "buildImageOz")
    assert out == [] and started_tasks(koji_hub_tls) == []


def test_livemedia_permission_is_named(make_config, koji_hub_tls, capsys):
    koji_hub_tls.add_user("appliance-bot", perms=["appliance"])
    rc, _, err = run(capsys, "--config", make_config([LIVEMEDIA], user="appliance-bot"),
                     "--date", DATE, "--no-messages")
    assert rc == 1
    one_error_line(err, "'livemedia' permission", "appliance-bot", "buildImage")
    assert started_tasks(koji_hub_tls, "livemedia") == []


@pytest.mark.parametrize("retries", [1, 3])
def test_hub_down_is_one_line_after_bounded_retries(make_config, koji_hub_tls, capsys, retries):
    koji_hub_tls.down = True
    rc, out, err = run(capsys, "--config", make_config([WEEKLY], retries=retries),
                       "--date", DATE, "--no-messages")
    assert rc == 1 and out == []
    one_error_line(err, f"{koji_hub_tls.url} is unreachable after {retries + 1} attempt(s)",
                   "503")
    assert len(koji_hub_tls.requests) == retries + 1


def test_hub_refusing_connections(make_config, koji_hub_tls, capsys):
    cfg = make_config([WEEKLY])
    koji_hub_tls.stop()
    rc, out, err = run(capsys, "--config", cfg, "--date", DATE, "--no-messages")
    assert rc == 1 and out == []
    one_error_line(err, "is unreachable after 2 attempt(s)")


def test_hub_failing_mid_run_stops_the_run(make_config, koji_hub_tls, capsys):
    koji_hub_tls.inject_fault("listTasks", koji.ServerOffline("database maintenance"),
                              times=None)
    rc, _, err = run(capsys, "--config", make_config([WEEKLY, NIGHTLY]), "--date", DATE,
                     "--no-messages")
    assert rc == 1
    one_error_line(err, "stopped answering", WEEKLY["name"], "database maintenance")
    assert koji_hub_tls.calls_to("buildImageOz") == []


def test_refused_job_does_not_stop_the_others(make_config, koji_hub_tls, capsys):
    koji_hub_tls.targets = {"f44"}
    bad = {**WEEKLY, "name": "typo-target", "target": "f4"}
    rc, out, err = run(capsys, "--config", make_config([bad, NIGHTLY]), "--date", DATE,
                       "--no-messages")
    assert rc == 1
    one_error_line(err, "typo-target", "No such build target: f4")
    assert len(started_tasks(koji_hub_tls)) == 1 and out[0].startswith("started " + NIGHTLY["name"])


def test_unknown_certificate_user_is_a_login_error(make_config, koji_hub_tls, capsys):
    rc, _, err = run(capsys, "--config", make_config([WEEKLY], user="stranger"), "--date", DATE)
    assert rc == 1
    one_error_line(err, "Koji login (ssl)", "Unknown user: stranger")


@pytest.mark.parametrize("koji_settings, needle", [
    ({"cert": "/nonexistent/koji.pem"}, "koji.cert /nonexistent/koji.pem does not exist"),
    ({"auth": "gssapi", "principal": "fedimg/host@EXAMPLE.ORG", "keytab": "/nonexistent.kt"},
     "koji.keytab /nonexistent.kt does not exist"),
    ({"auth": "gssapi", "keytab": "/etc/hostname"}, "koji.principal is not set"),
])
def test_missing_credentials_fail_before_contacting_the_hub(make_config, koji_hub_tls, capsys,
                                                            koji_settings, needle):
    rc, _, err = run(capsys, "--config", make_config([WEEKLY], **koji_settings), "--date", DATE)
    assert rc == 1
    one_error_line(err, needle)
    assert koji_hub_tls.requests == []


@pytest.mark.parametrize("argv, needle", [
    (["no-such-job"], "no job named 'no-such-job'"),
    (["--release", "1.2"], "need named JOBs"),
    (["--name", "X", WEEKLY["name"], NIGHTLY["name"]], "exactly one JOB"),
    (["--schedule", "weekly", WEEKLY["name"]], "not both"),
    (["--date", "25.11.2026"], "expected YYYY-MM-DD"),
])
def test_usage_errors_exit_2(make_config, koji_hub_tls, capsys, argv, needle):
    with pytest.raises(SystemExit) as exc:
        rc = main(["--config", str(make_config([WEEKLY, NIGHTLY])), "--dry-run", *argv])
        raise SystemExit(rc)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert needle in err
    assert koji_hub_tls.requests == []


def test_incomplete_image_job_is_a_config_error(make_config, capsys):
    job = {k: v for k, v in WEEKLY.items() if k != "distro"}
    rc, _, err = run(capsys, "--config", make_config([job]), "--dry-run")
    assert rc == 2
    one_error_line(err, "distro is required for method 'image'")
