"""The sinks (tracker/app/sinks.py) and the outputs' thread, without the tracker."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import ROOT, error_line, require, run_tracker
from tracker.app.output_thread import OutputThread
from tracker.app.sinks import CSV_HEADER, CsvSink
from tracker.pipeline import Face, Frame


def test_output_thread_runs_calls_in_order_off_the_callers_thread():
    outputs, seen = OutputThread(depth=2), []
    caller = threading.get_ident()
    for i in range(50):
        outputs.submit(lambda i: (time.sleep(0.001), seen.append((i, threading.get_ident()))), i)
    outputs.close()
    assert [i for i, _ in seen] == list(range(50))  # every call ran, in order, before close returned
    assert all(thread != caller for _, thread in seen)
    outputs.close()  # a second close (after a Ctrl-C in the first) is harmless


def test_output_thread_hands_an_error_to_the_caller_and_drops_what_follows():
    outputs, seen = OutputThread(), []
    outputs.submit(seen.append, 1)
    outputs.submit(lambda: (_ for _ in ()).throw(BrokenPipeError("reader gone")))
    outputs.submit(seen.append, 3)
    with pytest.raises(BrokenPipeError, match="reader gone"):
        outputs.close()
    assert seen == [1]


def test_csv_rows_are_whole_and_quoted(tmp_path):
    path = tmp_path / "out.csv"
    sink = CsvSink(path, [])
    points = np.arange(30, dtype=np.float32).reshape(15, 2) / 3
    face = Face(4, np.array([1, 2, 30, 30], np.float32), points, points, 0.98765)
    unscored = Face(5, np.array([1, 2, 30, 30], np.float32), points, points)  # weights without a presence score
    image = np.zeros((4, 4, 3), np.uint8)
    sink.write(Frame(image, 7, 0.28, "a, b.mp4"), [face, unscored])
    sink.write(Frame(image, 8, 0.32, "plain.mp4"), [])  # a frame without faces has no rows
    sink.write(Frame(image, 0, None, "photo.jpg"), [face])  # a photo has no time
    sink.close()
    assert not path.exists() and sink.temporary == tmp_path / ".out.partial.csv"  # the run renames it
    table = pd.read_csv(sink.temporary, keep_default_na=False)
    assert list(table.columns) == CSV_HEADER and len(table) == 3
    assert table["source"].tolist() == ["a, b.mp4"] * 2 + ["photo.jpg"] and table["frame"].tolist() == [7, 7, 0]
    np.testing.assert_allclose(table.iloc[0, 7:37].to_numpy(float), points.reshape(-1), atol=0.005)
    lines = sink.temporary.read_text().splitlines()
    assert [line.rsplit(",", 2)[1:] for line in lines[1:]] == [["0.280", "0.988"], ["0.280", ""], ["", "0.988"]]


def test_csv_header_on_standard_output_waits_for_the_run_to_start(capsys):
    sink = CsvSink("-", [])
    sink.close()  # a run that failed before starting: not even the header
    assert capsys.readouterr().out == ""
    sink = CsvSink("-", [])
    sink.start()
    sink.start()
    sink.close()
    assert capsys.readouterr().out == ",".join(CSV_HEADER) + "\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_csv_on_a_full_disk_is_one_error_line():
    clip = require(ROOT / "samples" / "talking_face.mp4")
    run = run_tracker("--video", clip, "--csv", "/dev/full", "--no-display")
    assert run.rc == 2 and "Traceback" not in run.stderr, run.stderr
    assert "cannot write the CSV (No space left on device)" in error_line(run)
