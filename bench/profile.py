"""`python -m bench.profile PATH [-n N]`: where one page's time goes (pyinstrument).

Runs Voxboard in-process, configured like the benchmark's gunicorn (web role, row-level
security), logs in as the benchmark user, requests PATH once to warm up, then N times
under pyinstrument, and prints the call tree with the SQL statements of one request.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from bench import measure


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("path", help="e.g. /o/big/voices/")
    parser.add_argument("-n", type=int, default=20, help="profiled requests")
    parser.add_argument("--html", help="also write pyinstrument's HTML report here")
    parser.add_argument(
        "--api", action="store_true", help="send a new API key of the big org, not a login"
    )
    args = parser.parse_args(argv)

    from pyinstrument import Profiler

    app = measure.voxboard_app()
    client = app.test_client()
    if args.api:
        from bench import cases

        fx = cases.load_fixtures()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {fx.api_secret}"
    else:
        measure.log_in(client)
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    client.get(args.path).close()
    with measure.recording(engine) as seen:
        response = client.get(args.path)
        response.close()
    print(f"GET {args.path} → {response.status_code}, {len(seen)} statements:")
    for statement, _ in seen:
        print(f"  {' '.join(statement.split())[:150]}")
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for _ in range(args.n):
        client.get(args.path).close()
    profiler.stop()
    elapsed = (time.perf_counter() - started) / args.n * 1000
    print(f"\n{args.n} requests, {elapsed:.2f} ms each (in-process, profiler on)\n")
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        with open(args.html, "w") as out:
            out.write(profiler.output_html())
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
