"""Segment a video while it is being captured: causal, with bounded latency, on a live page.

SOURCE is a capture device (/dev/videoN or its index N), a network stream URL (rtsp://, http://,
tcp:// MPEG-TS, ...: whatever FFmpeg opens) or a video file (as fast as it decodes; --realtime
plays it at its own frame rate). Each frame is segmented from itself and the frames before it
(a window of the last --window frames; --stride frames reported per window). When the model is
slower than the source it works on the newest frame and drops the ones in between (counted). The
page shows the newest frame with the outline, its score, the latency, frames/s and dropped frames;
--out records a result folder that `lgrnet view`, `lgrnet score` and `lgrnet dataset` read (masks,
probabilities, overlay.mp4, the processed frames, predictions.json/csv with each frame's latency).
Ctrl-C stops it with the recording complete. A source that cannot be opened, stalls for --timeout
seconds or (a device or stream) ends: one line, exit 2, the recording complete up to the last
processed frame. A research tool, not a medical device (docs/live.md).

The page is served as `lgrnet view` serves its page (docs/viewer.md, "Serving a team on a hospital
network"): on 127.0.0.1 only, unless --host says otherwise; beyond loopback every request needs an
access token (a random one printed once as a URL, or $LGRNET_VIEW_TOKEN, or --token-file); --tls or
--certfile/--keyfile for HTTPS.

examples:
  lgrnet live /dev/video0 --weights demo --out exams/
  lgrnet live rtsp://192.168.1.20:8554/endo --weights demo --port 8770
  lgrnet live exam.mp4 --realtime --weights demo --window 6 --stride 2 --out runs/
  lgrnet live /dev/video0 --weights demo --host 0.0.0.0 --tls     # watched from a tablet on the ward network
"""
from __future__ import annotations

import sys
import time

from ..errors import InputError, UserError
from .arguments import add_device_argument, add_precision_argument, add_weights_arguments, check_output_folder
from .serving import PageAccess, add_serving_arguments


def add_arguments(p) -> None:
    p.add_argument("source", metavar="SOURCE", help="/dev/videoN or N, a stream URL, or a video file")
    add_weights_arguments(p)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="record a result folder DIR/<name> (default: no recording)")
    p.add_argument("--name", default=None, help="the recorded folder's name (default: live-<date>-<time>)")
    p.add_argument("--realtime", action="store_true",
                   help="a video file: play it at its own frame rate, dropping frames the model cannot keep up with "
                        "(devices and streams always run so)")
    p.add_argument("--window", type=int, default=None, help="frames of context, the newest included (default 2)")
    p.add_argument("--stride", type=int, default=None,
                   help="frames reported per window (default 2; S adds up to S-1 frames of delay, saves model time)")
    p.add_argument("--size", type=int, default=None,
                   help="model input size, a multiple of 32 (default: the size the weights record)")
    add_device_argument(p)
    add_precision_argument(p)
    add_serving_arguments(p, default_port=8766, page="the live page")
    p.add_argument("--no-page", action="store_true", help="no live page (record or measure only)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait when opening the source and for each frame before it counts as stalled (default 10)")
    p.add_argument("--linger", type=float, default=3.0,
                   help="seconds the page stays up after the source ends, so it can say so (default 3)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many processed frames")


def _check(args) -> "PageAccess | None":
    """Check the options before anything slow -> who may open the page (None: --no-page)."""
    from ..inference.stream import DEFAULT_STRIDE, DEFAULT_WINDOW, check_causal

    check_causal(DEFAULT_WINDOW if args.window is None else args.window,
                 DEFAULT_STRIDE if args.stride is None else args.stride)
    access = None if args.no_page else PageAccess(args, "lgrnet live", cookie="lgrnet_live")
    if args.timeout <= 0:
        raise UserError(f"--timeout {args.timeout}: must be positive")
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError(f"--max-frames {args.max_frames}: must be at least 1")
    if args.out is not None:
        check_output_folder(args.out)
    return access


def run(args) -> int:
    from ..inference.realtime import LatencyStats, run_live
    from ..inference.stream import CausalPredictor
    from ..io.capture import open_capture
    from ..runs.live_record import LiveRecorder
    from ..viewer.live import without_credentials  # a stream's password goes in no page and no result folder

    access = _check(args)
    recorder = None
    if args.out is not None:  # an existing result or an unwritable folder: before the model loads
        recorder = LiveRecorder(args.out, args.name or time.strftime("live-%Y%m%d-%H%M%S"), fps=25.0)
    predictor = CausalPredictor.from_pretrained(args.weights, preset=args.preset, device=args.device, size=args.size,
                                                window=args.window, stride=args.stride, precision=args.precision)
    source = open_capture(args.source, realtime=args.realtime, open_timeout=args.timeout, read_timeout=args.timeout)
    settings = predictor.settings()
    settings.update(source=without_credentials(source.path), source_kind=source.kind, source_fps=source.fps,
                    drop_frames=source.realtime, recording=None)
    server = state = None
    if access is not None:
        from ..viewer.live import LiveState, make_live_server, start_live_server

        state = LiveState(source.path, settings)
        access.warn_cleartext()
        try:
            access.start()
            server = make_live_server(state, args.host, args.port, ssl_context=access.ssl_context)
        except (OSError, UserError) as exc:
            source.close()
            access.close()
            if isinstance(exc, UserError):
                raise
            raise UserError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from None
        server.auth = access.auth(server.server_address[1])  # every request needs a token; the cookie is this port's
        start_live_server(server)
        access.print_fingerprint()
        # the one place a generated token is shown: the address to open, on stdout (never in a log line)
        _, opened, note = access.address(server.server_address)
        print(f"live page: {opened}" + (f"  ({note[2:]})" if note else ""), flush=True)
    if recorder is not None:
        recorder.fps = source.fps
        recorder.start(source.frame_size)
        settings["recording"] = str(recorder.writer.final)
    stats = LatencyStats()
    failure = None
    ended = "ended"
    live = run_live(predictor.session(where=source.path), source.frames(), drop=source.realtime,
                    stall_timeout=args.timeout)
    try:
        try:
            for lp in live:
                stats.add(lp)
                if state is not None:
                    state.publish(lp, stats.summary())
                if recorder is not None:
                    recorder.add(lp)
                if args.max_frames is not None and stats.processed >= args.max_frames:
                    ended = "max-frames"
                    break
            else:
                if source.live:  # a device or a stream is not expected to end
                    failure = f"{source.path}: the stream ended after {stats.processed} processed frames"
        except InputError as exc:
            failure = str(exc)
        except KeyboardInterrupt:
            ended = "interrupted"
        finally:
            live.close()
            source.close()
        ended = "failed" if failure else ended
        figures = stats.run_summary()
        settings.update(ended=ended, failure=failure, frames_read=stats.processed + stats.dropped, **figures)
        path = recorder.finish(settings) if recorder is not None else None
        recorder = None
        print(f"{source.path}: {figures['processed']} frames processed, {figures['dropped']} dropped, latency p50 "
              f"{figures['latency_p50_ms']} ms, p99 {figures['latency_p99_ms']} ms, {figures['fps']} frames/s"
              + (f"; recorded {path}" if path else ""), file=sys.stderr, flush=True)
        if state is not None:
            state.finish("failed" if failure else ("stopped" if ended == "interrupted" else "ended"), failure or "")
            _linger(args.linger)
    except BaseException:
        if recorder is not None:
            recorder.abort()
        raise
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        if access is not None:
            access.close()
    if failure:
        raise UserError(failure)
    return 0


def _linger(seconds: float) -> None:
    """Keep the page up a little, so that it shows how the run ended (Ctrl-C skips the wait)."""
    try:
        time.sleep(max(0.0, seconds))
    except KeyboardInterrupt:
        pass
