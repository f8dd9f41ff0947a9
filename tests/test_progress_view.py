"""tinytrain.progress (what `train` shows on stderr) and the live lines `monitor` prints
while following a feeding process (tinytrain.status.live_lines)."""
import io

from tinytrain.progress import LINES, Progress
from tinytrain.status import live_lines


def _chunks(total, chunk, loss_of):
    """train_stream's progress dicts: chunk k has every sample's loss loss_of(k)."""
    done = 0
    for k in range((total + chunk - 1) // chunk):
        n = min(chunk, total - done)
        done += n
        yield dict(samples=done, total=total, steps=done, loss=loss_of(k), loss_sum=loss_of(k) * n,
                   loss_count=n, correct=n // 2, eval_accuracy=None, row=None)


def test_a_log_gets_a_few_lines_with_the_mean_loss_of_their_interval():
    out = io.StringIO()
    with Progress(3000, file=out, tty=False) as p:
        for d in _chunks(3000, 16, lambda k: float(k)):
            p.update(d)
    lines = out.getvalue().splitlines()
    assert len(lines) <= LINES + 1 and lines[-1].startswith("training: 3000/3000 (100%)")
    # the first line covers chunks 0..18 (samples 1..304 >= 300): the mean of 0..18, not the last chunk's 18
    assert lines[0].startswith("training: 304/3000")
    assert " loss 9.000 " in lines[0] and " acc 0.500 " in lines[0]
    assert "\r" not in out.getvalue()


def test_an_interrupted_run_still_gets_its_last_line():
    out = io.StringIO()
    with Progress(3000, file=out, tty=False) as p:
        for d in list(_chunks(3000, 16, lambda k: 1.0))[:5]:
            p.update(d)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("training: 80/3000 (3%)  loss 1.000  acc 0.500  ")


def test_a_terminal_gets_one_bar_redrawn_in_place():
    out = io.StringIO()
    with Progress(320, file=out, tty=True) as p:
        for d in _chunks(320, 16, lambda k: 2.0):
            d["eval_accuracy"] = 0.5
            p.update(d)
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n") and text.startswith("\rtraining [")
    last = text.rsplit("\r", 1)[1]
    assert "320/320 100%" in last and "loss 2.000" in last and "held-out 0.500" in last
    assert "#" * 28 in last


def test_monitor_lines_show_step_rate_and_interval_loss():
    recs = [dict(kind="progress", time=100.0 + 0.1 * i, samples=16 * (i + 1), total=640, steps=16 * (i + 1),
                 loss_sum=16.0 * i, loss_count=16, correct=12) for i in range(40)]
    recs.insert(20, dict(kind="curve", time=102.0, samples=320, steps=320, loss=0.5, running_accuracy=0.75,
                         eval_accuracy=0.8, seconds=2.0))
    lines = list(live_lines(recs, interval=1.0))
    progress = [ln for ln in lines if "steps/s" in ln]
    assert len(progress) == 4           # once a second of the feeder's clock, and the last record
    assert "160.0 steps/s" in progress[0] and progress[0].startswith("samples     176/640")
    assert "loss 5.5000  acc 0.750" in progress[0]            # records 1..10: losses 1..10
    assert [ln for ln in lines if "held-out" in ln] == [
        "samples     320  steps     320  held-out 0.800  (interval loss 0.5000, running acc 0.750)"]


def test_a_monitor_following_a_polling_monitor_shows_its_stats():
    """A monitor that polls the device publishes "stats" records; one following it prints
    the same lines (at most one per interval), with the step rate between records."""
    def rec(t, steps):
        return dict(kind="stats", time=t, counters=dict(frames_ok=3 * steps, bad=0),
                    stats=dict(steps=steps, mode=0, train_samples=steps, train_correct=steps // 2,
                               train_loss_sum=0.5 * steps, eval_samples=0, eval_correct=0, infer_count=1,
                               rolled_back=0))
    recs = [rec(100.0 + 0.5 * i, 40 * i) for i in range(7)]
    lines = list(live_lines(recs, interval=1.0))
    assert len(lines) == 4                                   # t = 100, 101, 102, 103
    assert lines[0].startswith("steps       0  mode train") and "steps/s" not in lines[0]
    assert lines[1].endswith("  80.0 steps/s") and "mean loss 0.5000  train acc 0.500" in lines[1]
    assert "frames ok 240 bad 0" in lines[1]


def test_a_port_holder_is_found_while_alive_and_forgotten_when_closed_or_gone(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    from tinytrain.portowner import holder
    from tinytrain.status import StatusWriter
    monkeypatch.setenv("TINYTRAIN_HOME", str(tmp_path))
    url = "socket://127.0.0.1:1"
    assert holder(url) is None
    code = ("import sys, time\nfrom tinytrain.status import StatusWriter\nw = StatusWriter(sys.argv[1])\n"
            "print('ready', flush=True)\nsys.stdin.readline()\nw.close()\nprint('closed', flush=True)\n"
            "sys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, TINYTRAIN_HOME=str(tmp_path)))
    try:
        assert proc.stdout.readline().strip() == "ready"
        h = holder(url)
        assert h["pid"] == proc.pid and "StatusWriter" in h["command"]
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "closed"
        assert holder(url) is None                  # closed, though still running
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    with StatusWriter(url):
        assert holder(url) is None                  # this process's own port is not "held"
