"""The ``facetalk`` command line.

Each area adds its own sub-command group here; the work itself lives in the
library modules, so every command is a thin wrapper a newcomer can read at a
glance. User-facing failures are :class:`FaceTalkError`s, printed without a
traceback and with a non-zero exit code (:mod:`.cli_errors`).

Importing this module stays light (no livekit-agents, no avatar, no config
models): every worker and test subprocess starts here. Commands import what
they need when they run, and the avatar's and training's command groups are
registered by name (:class:`.lazy_commands.LazyCommands`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Annotated, Protocol

import typer
from rich.console import Console

from .cli_errors import reports_errors
from .errors import FaceTalkError
from .lazy_commands import LazyCommands
from .resources import default_config, init_project
from .shutdown import sigterm_as_interrupt, stop_requested


class _AreaCommands(LazyCommands):
    """The command groups of the avatar and training areas, imported when used."""

    lazy = {
        "persona": "facetalk.avatar.cli:persona_app",
        "models": "facetalk.avatar.cli:models_app",
        "bench": "facetalk.avatar.cli:bench_app",
        "render": "facetalk.avatar.cli:render_command",
        "train": "facetalk.avatar.train_cli:train_app",
        "data": "facetalk.avatar.data.cli:data_app",
    }


class _EvalCommands(LazyCommands):
    """``facetalk eval``: the generator's evaluation lives with training."""

    lazy = {"generator": "facetalk.avatar.train_cli:eval_generator_command"}


app = typer.Typer(
    name="facetalk",
    help="FaceTalk: talk to a face in a LiveKit room.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_AreaCommands,
)
config_app = typer.Typer(help="Check persona and pipeline files.", no_args_is_help=True)
server_app = typer.Typer(help="Run a local LiveKit server.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(server_app, name="server")

console = Console()
err_console = Console(stderr=True)


@config_app.command("check")
@reports_errors
def config_check(
    files: Annotated[list[Path], typer.Argument(help="Persona or pipeline YAML files.")],
) -> None:
    """Validate config files; exit non-zero if any is invalid."""
    from .config import load_config

    failed = 0
    for path in files:
        try:
            config = load_config(path)
        except FaceTalkError as e:
            failed += 1
            err_console.print("[red]✗[/]", end=" ")
            err_console.print(str(e), highlight=False, markup=False, soft_wrap=True)
            continue
        console.print(f"[green]✓[/] {path}: valid {config.kind} config", highlight=False)
    if failed:
        raise typer.Exit(1)


@server_app.command("run")
@reports_errors
def server_run(
    port: Annotated[int, typer.Option(help="Signalling port (ws://127.0.0.1:PORT).")] = 7880,
) -> None:
    """Run livekit-server --dev on loopback until Ctrl-C or SIGTERM."""
    from .livekit_server import LocalLiveKitServer, free_port

    with contextlib.suppress(KeyboardInterrupt), sigterm_as_interrupt():
        with LocalLiveKitServer(port=port, rtc_tcp_port=free_port()) as server:
            console.print(f"LiveKit server on [bold]{server.url}[/] (keys devkey/secret). Ctrl-C stops it.")
            while True:
                time.sleep(1)


@server_app.command("build")
@reports_errors
def server_build() -> None:
    """Build the pinned livekit-server with 'go install' into the user's cache (once)."""
    from .livekit_server import LIVEKIT_SERVER_VERSION, build_server

    with console.status(f"building livekit-server {LIVEKIT_SERVER_VERSION} (a few minutes)…"):
        path = build_server()
    console.print(f"built {path}")


@server_app.command("token")
@reports_errors
def server_token(
    room: Annotated[str, typer.Option(help="Room the token may join.")] = "facetalk",
    identity: Annotated[str, typer.Option(help="Participant identity.")] = "user",
) -> None:
    """Print a join token for one room and identity (keys from the environment)."""
    from .config import LiveKitConfig
    from .livekit_server import make_token

    lk = LiveKitConfig()
    console.print(make_token(identity, room, api_key=lk.api_key, api_secret=lk.api_secret.get_secret_value()))


# ./configs/<name> when the current folder has it (a 'facetalk init' project, the repository), else the packaged one.
DEFAULT_PERSONA = default_config("persona.yaml")
DEFAULT_PIPELINE = default_config("pipeline.yaml")
PersonaOption = Annotated[Path, typer.Option(help="Persona YAML.", envvar="FACETALK_PERSONA")]
PipelineOption = Annotated[Path, typer.Option(help="Pipeline YAML.", envvar="FACETALK_PIPELINE")]


@app.command("init")
@reports_errors
def init(
    folder: Annotated[Path, typer.Argument(help="Project folder; created if missing.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite config files that already exist.")] = False,
) -> None:
    """Write editable copies of the default personas, portraits and pipeline into FOLDER/configs."""
    for path in init_project(folder, force=force):
        console.print(f"[green]✓[/] {path}", highlight=False)
    console.print(f"Edit them, then run facetalk in {folder} (e.g. 'facetalk demo'): it uses ./configs there.",
                  highlight=False)


@app.command(
    "agent",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@reports_errors
def agent(
    ctx: typer.Context,
    persona: PersonaOption = DEFAULT_PERSONA,
    pipeline: PipelineOption = DEFAULT_PIPELINE,
) -> None:
    """Run the worker: 'facetalk agent dev|start|connect ...' (livekit-agents' CLI)."""
    from .agent.launcher import run_worker_cli

    run_worker_cli(persona, pipeline, ctx.args or ["--help"])


class _HTTPService(Protocol):
    @property
    def url(self) -> str: ...

    async def start(self) -> object: ...
    async def aclose(self) -> None: ...


def _serve_until_interrupted(service: _HTTPService, what: str) -> None:
    """Start an asyncio HTTP service, say where it is, and run it until Ctrl-C or SIGTERM."""

    async def serve() -> None:
        await service.start()
        console.print(f"{what} on [bold]{service.url}[/]; Ctrl-C stops it")
        try:
            await stop_requested()
        finally:
            await service.aclose()

    with contextlib.suppress(KeyboardInterrupt):  # a Ctrl-C during start-up
        asyncio.run(serve())


@app.command(
    "avatar-worker",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@reports_errors
def avatar_worker(
    ctx: typer.Context,
    personas: Annotated[Path, typer.Option(help="Folder of the persona YAMLs agents may ask for.")] = DEFAULT_PERSONA.parent,
    pipeline: PipelineOption = DEFAULT_PIPELINE,
) -> None:
    """Serve remote avatars: 'facetalk avatar-worker dev|start' (livekit-agents' CLI), dispatched by LiveKit
    to agents with avatar.placement: remote."""
    from .agent.remote_avatar import run_avatar_worker_cli

    run_avatar_worker_cli(personas, pipeline, ctx.args or ["--help"])


@app.command("avatar-server", hidden=True)
@reports_errors
def avatar_server() -> None:
    """Gone: replaced by 'facetalk avatar-worker'."""
    raise FaceTalkError(
        "'facetalk avatar-server' is gone: remote avatars are now livekit-agents workers dispatched by LiveKit",
        hint="run 'facetalk avatar-worker start --personas DIR' on the avatar machine, and delete "
        "avatar.remote_url from the agent's pipeline",
    )


@app.command("web")
@reports_errors
def web(
    host: Annotated[str, typer.Option(help="Interface to listen on; anyone who reaches it can get tokens.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port of the page.")] = 8080,
    personas: Annotated[Path, typer.Option(help="Folder of persona YAMLs to offer (the worker's).")] = DEFAULT_PERSONA.parent,
    agent_wait: Annotated[float, typer.Option(
        min=0, help="Seconds a fresh room may wait for an agent before users hear 'all avatars are busy'; "
        "0 hands out tokens without checking.")] = 1.5,
) -> None:
    """Serve the browser page and its join tokens (LiveKit keys from the environment)."""
    from .dialogue.personas import PersonaCatalog
    from .web import WebServer, require_built_page

    require_built_page()
    server = WebServer(PersonaCatalog(personas), host=host, port=port, agent_wait_s=agent_wait)
    _serve_until_interrupted(server, "FaceTalk web")


@app.command("demo")
@reports_errors
def demo(
    persona: PersonaOption = DEFAULT_PERSONA,
    pipeline: PipelineOption = DEFAULT_PIPELINE,
    port: Annotated[int, typer.Option(help="LiveKit signalling port.")] = 7880,
    web_port: Annotated[int, typer.Option(help="HTTP port of the web page.")] = 8080,
) -> None:
    """Start a local LiveKit server, the agent and the web page; Ctrl-C or SIGTERM stops them."""
    from .config import load_config
    from .demo import run_demo

    load_config(persona)
    load_config(pipeline)
    with contextlib.suppress(KeyboardInterrupt), sigterm_as_interrupt():
        run_demo(persona, pipeline, port=port, console=console, web_port=web_port)


eval_app = typer.Typer(help="Measure the avatar from the user's side.", no_args_is_help=True, cls=_EvalCommands)
app.add_typer(eval_app, name="eval")


@eval_app.command("latency")
@reports_errors
def eval_latency(
    turns: Annotated[int, typer.Option(min=1, max=500, help="User turns per room.")] = 20,
    script: Annotated[
        str,
        typer.Option(
            help="A YAML list of turns (text or wav, interrupt), or a built-in set: 'synthetic' "
            "(piper's voice), 'human' (recordings of real people) or 'mixed' (both, reported side by side)."
        ),
    ] = "synthetic",
    llm: Annotated[str, typer.Option(help="'scripted', 'embedded', or an OpenAI-compatible base URL.")] = "scripted",
    rooms: Annotated[int, typer.Option(min=1, max=16, help="Simulated users talking at once.")] = 1,
    persona: PersonaOption = DEFAULT_PERSONA,
    pipeline: PipelineOption = DEFAULT_PIPELINE,
    out: Annotated[Path, typer.Option(help="Folder for report.json and report.html.")] = Path("latency-report"),
) -> None:
    """Talk to a local worker as simulated users and report turn-taking latency."""
    import json

    from rich.progress import Progress

    from .avatar.models import cache_dir
    from .config import load_config
    from .eval.latency import run_latency_eval
    from .eval.report import build_report, print_summary, write_html
    from .eval.script import BUILTIN_SCRIPTS, builtin_script, load_script

    if script in BUILTIN_SCRIPTS:
        turn_list = builtin_script(script, cache_dir() / "human-speech")
    else:
        turn_list = load_script(Path(script))
    load_config(persona)
    load_config(pipeline)
    out.mkdir(parents=True, exist_ok=True)
    with Progress(console=console) as progress:
        task = progress.add_task("conversing", total=turns * rooms)
        run = asyncio.run(
            run_latency_eval(
                turns=turns, script=turn_list, llm=llm, rooms=rooms, persona=persona, pipeline=pipeline,
                on_turn=lambda: progress.advance(task), work_dir=out / "logs",
            )
        )  # fmt: skip
    report = build_report(run)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    write_html(report, out / "report.html")
    print_summary(report, console)
    console.print(f"wrote {out / 'report.json'} and {out / 'report.html'}")


@eval_app.command("fetch-speech")
@reports_errors
def eval_fetch_speech() -> None:
    """Fetch the human speech set (recordings of real people, from Debian packages) into the cache."""
    from .avatar.models import cache_dir
    from .eval.human_speech import fetch_human_speech

    folder = cache_dir() / "human-speech"
    console.print(f"{len(fetch_human_speech(folder))} human recordings in {folder}")


@eval_app.command("soak")
@reports_errors
def eval_soak(
    minutes: Annotated[float, typer.Option(min=0.5, max=24 * 60, help="How long the user stays in the room.")] = 60,
    script: Annotated[str, typer.Option(
        help="A YAML list of turns, or 'synthetic', 'human' or 'mixed' (piper's voice and recordings of people).")] = "mixed",
    llm: Annotated[str, typer.Option(help="'scripted', 'embedded', or an OpenAI-compatible base URL.")] = "scripted",
    persona: PersonaOption = DEFAULT_PERSONA,
    pipeline: PipelineOption = DEFAULT_PIPELINE,
    seed: Annotated[int, typer.Option(help="Seed of the pauses between turns and of who talks over whom.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for soak.json and soak.png.")] = Path("soak-report"),
) -> None:
    """Talk to a local worker every 20-40 s for N minutes; record A/V offset, fps, latency, RSS over time."""
    import json

    from .avatar.models import cache_dir
    from .config import load_config
    from .eval.script import BUILTIN_SCRIPTS, builtin_script, load_script
    from .eval.soak import run_soak
    from .eval.soak_report import write_soak_report

    load_config(persona)
    load_config(pipeline)
    if script in BUILTIN_SCRIPTS:
        turns = builtin_script(script, cache_dir() / "human-speech")
    else:
        turns = load_script(Path(script))

    def progress(window: object) -> None:
        console.print(f"[dim]{json.dumps(window.__dict__)}[/]", highlight=False)

    run = asyncio.run(
        run_soak(minutes=minutes, persona=persona, pipeline=pipeline, llm=llm, script=turns, seed=seed,
                 work_dir=out / "logs", on_window=progress)
    )  # fmt: skip
    summary = write_soak_report(run, out)
    console.print_json(json.dumps(summary))
    console.print(f"wrote {out / 'soak.json'} and {out / 'soak.png'}")


def main() -> None:
    app()
