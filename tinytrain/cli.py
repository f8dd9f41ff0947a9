"""The `tinytrain` command line."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click
import numpy as np

from . import __version__
from .errors import TinyTrainError
from .training.qas import DEFAULT_UPDATE, UPDATE_MODES


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def user_errors(fn):
    """Turn TinyTrainError into a clear message and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TinyTrainError as exc:
            _fail(str(exc))
    return wrapper


def _emit(data, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=1) if as_json else text)


def _compile(model: str, quantize: str | None, calibration: str | None, scheme=None, num_classes=None,
             loss="softmax_cross_entropy", momentum=False, lr=0.01, memory_passes=True, board="native",
             update=None, update_seed=None, precision="fp32", loss_scale="1"):
    """tinytrain.compile with the CLI's options."""
    from .compiler import compile as compile_model
    scale = loss_scale if loss_scale == "dynamic" else _loss_scale(loss_scale)
    return compile_model(model, scheme=scheme, board=board, passes=memory_passes, quantize=quantize,
                         calibration=calibration, num_classes=num_classes, loss=loss, momentum=momentum, lr=lr,
                         update=update, update_seed=update_seed, precision=precision, loss_scale=scale)


def _loss_scale(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise TinyTrainError(f"--loss-scale {text!r}: a power of two (e.g. 1024) or 'dynamic'") from None


model_options = [
    click.argument("model"),
    click.option("--quantize", type=click.Choice(["int8"]), default=None,
                 help="Quantize a float Keras model to int8 (post-training, TFLite's converter)."),
    click.option("--calibration", type=click.Path(exists=True, dir_okay=False), default=None,
                 help="Calibration samples for --quantize (.npz with x, or .csv)."),
]


def with_model_options(fn):
    for opt in reversed(model_options):
        fn = opt(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinytrain")
def main():
    """Compile neural networks, forward and backward, to C for training on microcontrollers."""


train_options = [
    click.option("--train", "scheme", default=None, metavar="SCHEME",
                 help="Compile a training step: full, last:K, bias-only:N, or a scheme JSON file."),
    click.option("--num-classes", type=int, default=None,
                 help="Replace the classifier by a fresh head with N classes (transfer learning)."),
    click.option("--loss", type=click.Choice(["softmax_cross_entropy", "mse"]), default="softmax_cross_entropy",
                 show_default=True, help="Training loss."),
    click.option("--momentum/--no-momentum", default=False, show_default=True,
                 help="Keep SGD momentum state (counts in the memory plan)."),
    click.option("--update", "update", type=click.Choice(list(UPDATE_MODES)), default=None,
                 help="How int8 parameters keep the part of a step below one quantization step: "
                      "nearest (rounded away, no memory), shadow (fp32 copy, 4 B per trained element), "
                      "residual (8 more bits of fraction, 1 B per element), stochastic (unbiased rounding "
                      f"from an on-device PRNG, 4 B in all). Default: {DEFAULT_UPDATE}."),
    click.option("--update-seed", type=click.IntRange(0, 2 ** 32 - 1), default=None,
                 help="Seed of the stochastic-rounding PRNG compiled into the firmware."),
    click.option("--lr", type=float, default=0.01, show_default=True,
                 help="Initial learning rate compiled into the firmware (changeable over the link)."),
    click.option("--memory-passes/--no-memory-passes", default=True, show_default=True,
                 help="Fuse pointwise+depthwise convs and run depthwise in place where no backward "
                      "needs them (int8 graphs): a smaller arena, the same results bit for bit."),
    click.option("--precision", type=click.Choice(["fp32", "fp16", "mixed"]), default="fp32", show_default=True,
                 help="Float models: fp16 keeps activations, gradients and trained weights in half "
                      "precision; mixed adds an fp32 master copy of the trained weights. int8 models "
                      "with --train: the trained head in FP16, the frozen part int8 (a JSON scheme's "
                      "\"head\": \"float\" asks for an FP32 head with fp32)."),
    click.option("--loss-scale", default="1", show_default=True, metavar="S|dynamic",
                 help="fp16 / mixed: multiply the loss gradient by S (a power of two), or 'dynamic' "
                      "(halved on overflow, which skips the rest of that step's updates)."),
]


def with_train_options(fn):
    for opt in reversed(train_options):
        fn = opt(fn)
    return fn


@main.command()
@with_model_options
@with_train_options
@click.option("--board", default="native", show_default=True, help="Target board (see `tinytrain boards`).")
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Output folder (created whole, or not at all).")
@click.option("--compile/--no-compile", "compile_", default=None,
              help="Also build the firmware with PlatformIO (default: yes for boards that run here).")
@click.option("--force", is_flag=True, help="Replace an existing output folder not made by tinytrain.")
@click.option("--reads", type=click.Choice(["open", "closed"]), default="open", show_default=True,
              help="Whether the device answers reads (describe, weights pull...) outside an authenticated "
                   "session; writes always need one.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@user_errors
def build(model, quantize, calibration, scheme, num_classes, loss, momentum, update, update_seed, lr,
          memory_passes, precision, loss_scale, board, output, compile_, force, reads, as_json):
    """Compile MODEL into a PlatformIO project for BOARD (with a training step if --train)."""
    from .boards import load_board
    from .project import build_project, size_report
    board_info = load_board(board)
    compiled = _compile(model, quantize, calibration, scheme, num_classes, loss, momentum, lr, memory_passes,
                        board=board_info, update=update, update_seed=update_seed, precision=precision,
                        loss_scale=loss_scale)
    result = compiled.write_project(Path(output), force=force, reads=reads)
    program = compiled.program
    lines = [f"emitted {compiled.graph.name} for {board} in {result['output']}"
             + (f" (training: {scheme}, update {program.update})" if scheme else ""), result["fit_table"]]
    if compile_ is None:
        compile_ = board_info.emulated
    if compile_:
        built = build_project(Path(output))
        result["build"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in built.items()}
        lines.append(size_report(built))
    if as_json:
        result.pop("fit_table", None)      # the table's figures are in result["fit"]
    _emit(result, as_json, "\n".join(lines))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the boards as JSON.")
@click.option("--tm", "thing_models", is_flag=True,
              help="Print the boards' W3C WoT Thing Models (JSON-LD) instead (docs/semantic.md).")
@click.option("--board", "board_name", default=None, help="With --tm: only this board's Thing Model.")
@click.option("-o", "--output", "output", default=None, type=click.Path(file_okay=False),
              help="With --tm: write BOARD.tm.jsonld files into this folder instead.")
@user_errors
def boards(as_json, thing_models, board_name, output):
    """List the boards tinytrain can build for."""
    from .boards import boards_table, list_boards
    if thing_models:
        from .semantic.tm import thing_model
        names = [board_name] if board_name else [b.name for b in list_boards()]
        models = [thing_model(n) for n in names]
        if output:
            out = Path(output)
            out.mkdir(parents=True, exist_ok=True)
            for name, tm in zip(names, models):
                _write_json(out / f"{name}.tm.jsonld", tm)
            click.echo(f"wrote {len(models)} Thing Model(s) to {out}")
        else:
            click.echo(json.dumps(models[0] if board_name else models, indent=1))
        return
    if board_name or output:
        raise TinyTrainError("--board and -o go with --tm")
    if as_json:
        fields = ("name", "title", "core", "clock_hz", "sram_bytes", "sram_usable_bytes", "flash_bytes",
                  "flash_usable_bytes", "fpu", "simd", "platform", "pio_board", "emulated")
        _emit([{f: getattr(b, f) for f in fields} for b in list_boards()], True, "")
    else:
        click.echo(boards_table())


@main.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--detach", is_flag=True, help="Leave an emulated board running; stop it with `tinytrain stop`.")
@user_errors
def flash(project, detach):
    """Build (if needed) and flash PROJECT; emulated boards boot and print their port URL."""
    from .emulator import flash as flash_project
    result = flash_project(Path(project), detach=detach)
    running = result.get("running")
    if running is None:
        click.echo(result.get("message", "flashed"))
        return
    click.echo(f"{result['board']} running; port: {running.url}")
    if detach:
        click.echo(f"stop it with: tinytrain stop {project}")
        return
    click.echo("press Ctrl-C to stop it")
    try:
        while running.alive():
            import time
            time.sleep(0.5)
        click.echo("the emulated board exited", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


@main.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@user_errors
def stop(project):
    """Stop an emulated board started with `tinytrain flash --detach`."""
    from .emulator import stop as stop_board
    click.echo("stopped" if stop_board(Path(project)) else "nothing was running")


groups_option = click.option(
    "--groups", default=None, metavar="NAME=CLASSES,...",
    help="Named groups of classes to report apart, e.g. old=0-4,new=5-9 (ranges, or classes joined by +).")


@main.command()
@click.argument("model", required=False)
@click.option("--port", "url", default=None, metavar="URL",
              help="Evaluate on the device at URL (evaluation passes: nothing is learned).")
@click.option("--data", "data_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Held-out samples with labels (.npz with x, y, or .csv, label last).")
@groups_option
@click.option("--plot", "plot_file", default=None, type=click.Path(dir_okay=False),
              help="Also write the confusion matrix as a PNG image.")
@click.option("--quantize", type=click.Choice(["int8"]), default=None, help="With MODEL: as `build --quantize`.")
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False), default=None,
              help="With MODEL: as `build --calibration`.")
@click.option("--train", "scheme", default=None, metavar="SCHEME",
              help="With MODEL and --weights: the scheme the device's firmware was built with.")
@click.option("--num-classes", type=int, default=None, help="With MODEL and --weights: as `build --num-classes`.")
@click.option("--weights", "weights_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="With MODEL: evaluate the host build holding these trainable parameters "
                   "(a file of `tinytrain weights pull`) instead of the model's own.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@user_errors
def evaluate(model, url, data_file, groups, plot_file, quantize, calibration, scheme, num_classes, weights_file,
             as_json):
    """Held-out accuracy of the device at --port, or of MODEL on the host build: overall,
    per group of classes (--groups), per class, and the confusion matrix.

    MODEL --train SCHEME --weights FILE evaluates on the host what a device learned: the
    host build of the training firmware, holding the parameters pulled from the device."""
    from .datasets import check_samples, check_samples_for_device, load_samples
    from .evaluate import (device_predictions, format_summary, host_predictions, parse_groups, summarize,
                           write_confusion_png)
    if (model is None) == (url is None):
        raise TinyTrainError("give either --port URL (a device) or MODEL (the host build), not both")
    if url is not None and (scheme or num_classes or weights_file or quantize or calibration):
        raise TinyTrainError("--train, --num-classes, --weights, --quantize and --calibration go with MODEL, "
                             "not --port (the device runs what it was built with)")
    x, y = load_samples(data_file)
    if url is not None:
        with _open_link(url) as link:
            d = link.describe()
            num_classes = d.output_size
            groups_ = parse_groups(groups, num_classes)
            x, y = check_samples_for_device(x, y, d, data_file)
            predicted = device_predictions(link, x, y)
        where = dict(port=url, model=d.model_name, model_hash=d.model_hash, board=d.board)
    else:
        if (weights_file is None) != (scheme is None):
            raise TinyTrainError("--weights FILE and --train SCHEME go together (the parameters of a training build)")
        compiled = _compile(model, quantize, calibration, scheme, num_classes)
        graph = compiled.graph
        params = None
        if weights_file:
            from .weightsfile import read as read_weights
            file_hash, params = read_weights(Path(weights_file))
            if file_hash != compiled.model_hash:
                raise TinyTrainError(f"{weights_file} holds weights of model {file_hash}; {model} with --train "
                                     f"{scheme} compiles to model {compiled.model_hash} (same options as the build?)")
        num_classes = graph.tensors[graph.outputs[0]].size
        groups_ = parse_groups(groups, num_classes)
        x, y = check_samples(x, y, graph.tensors[graph.inputs[0]].shape, num_classes, data_file,
                             need_labels=True)
        predicted = host_predictions(compiled, x, params)
        where = dict(model=graph.name, model_hash=compiled.model_hash, board="host", weights=weights_file)
    summary = summarize(y, predicted, num_classes, groups_)
    if plot_file:
        write_confusion_png(summary, plot_file, title=f"{where['model']} on {where['board']}")
    data = dict(where, data=data_file, **summary, plot=plot_file)
    text = (f"{where['model']} on {where['board']}" + (f" with {weights_file}" if weights_file else "")
            + f", {data_file}:\n" + format_summary(summary)
            + (f"\nconfusion matrix image: {plot_file}" if plot_file else ""))
    _emit(data, as_json, text)


@main.command()
@with_model_options
@click.option("--json", "as_json", is_flag=True, help="Print the layer table and memory plan as JSON.")
@click.option("--tensors", is_flag=True, help="Also print the per-tensor arena table.")
@with_train_options
@user_errors
def inspect(model, quantize, calibration, as_json, tensors, scheme, num_classes, loss, momentum, update,
            update_seed, lr, memory_passes, precision, loss_scale):
    """Print MODEL's layer table (op, shapes, parameters, MACs) and its memory plan
    (the training step's memory plan with --train)."""
    from . import report
    from .planner import plan_graph
    compiled = _compile(model, quantize, calibration, scheme, num_classes, loss, momentum, lr, memory_passes,
                        update=update, update_seed=update_seed, precision=precision, loss_scale=loss_scale)
    graph, program = compiled.graph, compiled.program
    plan = plan_graph(graph)
    layers = report.layer_rows(graph)
    memory = compiled.memory
    data = dict(model=graph.name, model_hash=compiled.model_hash, layers=layers, macs=compiled.macs,
                memory=memory, plan=dict(algorithm=plan.algorithm, tensors=report.plan_rows(plan)))
    if program is not None:
        data["training"] = dict(scheme=scheme, loss=loss, update=program.update,
                                update_seed=program.update_seed, macs_per_step=program.macs(),
                                trained=program.scheme.describe())
    text = "\n\n".join(filter(None, [
        f"model {graph.name}  ({len(layers)} layers, {data['macs']:,} MACs, hash {data['model_hash']})",
        report.format_layers(layers),
        (f"training step: {scheme}, update {program.update}\n  " + "\n  ".join(data["training"]["trained"]))
        if program else "",
        report.format_memory(memory) + ("" if program else f"\n(planner: {plan.algorithm})"),
        report.format_plan(data["plan"]["tensors"]) if tensors else ""]))
    _emit(data, as_json, text)


@main.command()
@with_model_options
@click.option("--data", "data_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Samples to run (.npz with x and optional y, or .csv).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Run only the first N samples.")
@click.option("--json", "as_json", is_flag=True, help="Print predictions and accuracy as JSON.")
@user_errors
def run(model, quantize, calibration, data_file, limit, as_json):
    """Compile MODEL for the host, run it on samples and print its predictions."""
    from .datasets import check_samples, load_samples
    compiled = _compile(model, quantize, calibration)
    graph = compiled.graph
    x, y = load_samples(data_file)
    x, y = check_samples(x, y, graph.tensors[graph.inputs[0]].shape, graph.tensors[graph.outputs[0]].size,
                         data_file)
    if limit:
        x, y = x[:limit], (y[:limit] if y is not None else None)
    outputs = compiled.run(x)
    from .predict import predicted_class
    pred = predicted_class(outputs)
    data = dict(model=graph.name, samples=len(x), predictions=pred.tolist())
    lines = [f"model {graph.name}: {len(x)} samples on the host build"]
    lines.append("predictions: " + " ".join(map(str, pred[:50].tolist())) + (" ..." if len(pred) > 50 else ""))
    if y is not None:
        acc = float(np.mean(pred == y))
        data["accuracy"] = acc
        lines.append(f"accuracy: {acc:.4f} ({int(np.sum(pred == y))}/{len(y)})")
    _emit(data, as_json, "\n".join(lines))


# --- talking to a device -------------------------------------------------------------------

port_option = click.option("--port", "url", required=True, metavar="URL",
                           help="Device port: socket://127.0.0.1:PORT (QEMU), /dev/pts/N (native), /dev/ttyACM0...")


def _open_link(url: str):
    """The device's port; refused, naming the process, while another tinytrain process holds it
    (two readers of one port steal each other's replies)."""
    from .link import Link
    from .portowner import holder, holder_text
    held = holder(url)
    if held is not None:
        raise TinyTrainError(f"port {url} is in use by {holder_text(held)}; "
                             f"`tinytrain monitor --port {url}` follows it")
    try:
        return Link.open(url)
    except TinyTrainError as e:
        held = holder(url)
        raise TinyTrainError(str(e) + (f" (the port is in use by {holder_text(held)})" if held else "")) from None


def _description_dict(d, link=None) -> dict:
    data = d.report()
    if link is not None:
        data["authenticated"] = link.authenticated
    return data


def _write_json(path: Path, value) -> None:
    """Write a JSON file whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    tmp.replace(path)


def _project_manifest(project: str | None) -> dict | None:
    if project is None:
        return None
    from .project import read_manifest
    return read_manifest(project)


@main.command()
@port_option
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@click.option("--td", "as_td", is_flag=True,
              help="Print the device's W3C WoT Thing Description (JSON-LD; docs/semantic.md).")
@click.option("--gateway", default="http://127.0.0.1:8080", show_default=True, metavar="URL",
              help="With --td: the `tinytrain serve` the TD's forms point to.")
@click.option("--project", default=None, type=click.Path(exists=True, file_okay=False),
              help="The project folder the firmware was built in: adds what the build knows (learning rate, "
                   "update mode and its bytes, scheme; with --td also MACs). Default: the project of a board "
                   "started with `tinytrain flash --detach` at this port.")
@user_errors
def describe(url, as_json, as_td, gateway, project):
    """Print what the device at --port is: board, firmware, model, memory, capabilities,
    and what its build knows (learning rate, update mode, the bytes the update keeps)."""
    if as_td:
        from .semantic.device import Device
        from .semantic.td import thing_description
        manifest = _project_manifest(project)
        with Device.open(url) as device:
            state = device.state()
        click.echo(json.dumps(thing_description(state, gateway=gateway, project=manifest), indent=1))
        return
    from .deviceinfo import description_fields, format_fields
    with _open_link(url) as link:
        d = link.describe()
        reported = _description_dict(d, link)
    if d.trainable:       # what the device applies now: DESCRIBE carries it (no GET_HPARAMS round trip)
        reported.update({k: float(f"{getattr(d, k):.7g}") for k in ("lr", "momentum", "weight_decay")})  # float32 as typed
    if project is None:
        from .emulator import project_of
        project = project_of(url)
    manifest = None
    if project is not None:
        try:
            manifest = _project_manifest(project)
        except TinyTrainError:
            manifest = None
    data = description_fields(reported, manifest)
    _emit(data, as_json, format_fields(data, str(project) if project else None))


@main.command()
@port_option
@click.option("--data", "data_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Training samples: .npz with x, y (or .csv, label last).")
@click.option("--eval", "eval_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Held-out samples evaluated on the device periodically.")
@click.option("--epochs", type=int, default=1, show_default=True)
@click.option("--lr", type=float, default=None, help="Learning rate (default: keep the device's).")
@click.option("--momentum", type=float, default=None, help="SGD momentum (default: keep the device's).")
@click.option("--chunk", type=int, default=None,
              help="Samples per step of the loop (progress, curve; default: 8 frames' worth); the link "
                   "batches them into frames and pipelines them.")
@click.option("--eval-every", type=int, default=None, help="Evaluate every N samples (default: 4 times per epoch).")
@click.option("--curve", "curve_prefix", type=click.Path(dir_okay=False), default="learning_curve",
              show_default=True, help="Write PREFIX.csv and PREFIX.png.")
@click.option("--shuffle/--no-shuffle", default=True, show_default=True,
              help="Go through the samples in a new random order every epoch (drawn from --seed), or in "
                   "the file's order.")
@click.option("--seed", type=click.IntRange(0, 2 ** 32 - 1), default=0, show_default=True,
              help="Seed of the shuffling: the same seed, the same order of samples.")
@groups_option
@click.option("--save/--no-save", default=False, help="Save the learned weights to the device's store at the end.")
@click.option("--json", "as_json", is_flag=True, help="Print the final figures as JSON.")
@user_errors
def train(url, data_file, eval_file, epochs, lr, momentum, chunk, eval_every, curve_prefix, shuffle, seed, groups,
          save, as_json):
    """Stream samples to the device at --port and let it learn online.

    Both files are read and checked against the device's model (shapes, values, labels)
    before the first sample is sent. The device is put in train mode; the command fails
    (exit 2) when its step count does not advance with the samples it acknowledged.

    With --eval, the held-out samples are evaluated on the device before the first sample
    (sample 0 of the curve) and every --eval-every samples; --groups reports them by group
    of classes as `tinytrain evaluate` does. Progress goes to stderr: a bar on a terminal,
    a few lines otherwise; the loss shown is the mean over the samples since the last update."""
    from .datasets import check_samples_for_device, load_samples
    from .evaluate import device_predictions, group_line, parse_groups, summarize
    from .online import train_stream
    from .progress import Progress
    from .status import StatusWriter
    if epochs < 1 or (chunk is not None and chunk < 1):
        raise TinyTrainError("--epochs and --chunk must be at least 1")
    raw_train = load_samples(data_file)
    raw_eval = load_samples(eval_file) if eval_file else None
    if groups and eval_file is None:
        raise TinyTrainError("--groups needs --eval FILE (the held-out samples it reports on)")
    evaluations: list[dict] = []
    with _open_link(url) as link, StatusWriter(url) as status:
        d = link.describe()
        if not d.trainable:
            raise TinyTrainError(f"the device at {url} runs an inference-only build of {d.model_name}; "
                                 "build it with --train SCHEME")
        groups_ = parse_groups(groups, d.output_size)
        x, y = check_samples_for_device(*raw_train, d, data_file)
        ex, ey = check_samples_for_device(*raw_eval, d, eval_file) if raw_eval else (None, None)
        cur = link.get_hparams()
        if lr is not None or momentum is not None:
            link.set_hparams(lr if lr is not None else cur[0], momentum if momentum is not None else cur[1], cur[2])

        def held_out() -> float:
            summary = summarize(ey, device_predictions(link, ex, ey), d.output_size, groups_)
            evaluations.append(summary)
            return summary["accuracy"]

        def progress(p):
            if p["row"] is not None and p["eval_accuracy"] is not None and evaluations:
                p["held_out"] = group_line(evaluations[-1]) if groups_ else None
            bar.update(p)
            status.write(kind="progress", samples=p["samples"], total=p["total"], steps=p["steps"],
                         loss_sum=p["loss_sum"], loss_count=p["loss_count"], correct=p["correct"])

        with Progress(len(x) * epochs) as bar:
            report = train_stream(link, x, y, eval_x=ex, eval_y=ey, epochs=epochs, chunk=chunk,
                                  eval_every=eval_every, shuffle_seed=seed if shuffle else None,
                                  on_progress=progress, status=status,
                                  evaluator=held_out if ex is not None else None, eval_at_start=ex is not None)
        saved = link.save_weights() if save else None
    report.curve.write_csv(Path(curve_prefix + ".csv"))
    report.curve.write_png(Path(curve_prefix + ".png"), title=f"{d.model_name} on {d.board}")
    last_loss = next((r["loss"] for r in reversed(report.curve.rows) if r.get("loss") is not None), None)
    data = dict(samples=report.samples, steps=report.steps, seconds=round(report.seconds, 3),
                samples_per_second=round(report.samples_per_second, 2), interrupted=report.interrupted,
                shuffle=shuffle, seed=seed if shuffle else None,
                final_loss=last_loss, final_eval_accuracy=report.final_eval_accuracy,
                rolled_back=report.rolled_back,
                running_accuracy=report.running_accuracy,
                eval_before=_eval_figures(evaluations[0]) if evaluations else None,
                eval_after=_eval_figures(evaluations[-1]) if len(evaluations) > 1 else None,
                curve_csv=curve_prefix + ".csv", curve_png=curve_prefix + ".png",
                saved_generation=saved.generation if saved else None)
    lines = [("interrupted: " if report.interrupted else "")
             + f"{report.samples} samples, {report.steps} device steps, {report.samples_per_second:.1f} samples/s"
             + (f", shuffled (seed {seed})" if shuffle else ", in the file's order")]
    if report.running_accuracy is not None and last_loss is not None:
        lines.append(f"this run: loss {last_loss:.4f} (mean of the last interval), "
                     f"running accuracy {report.running_accuracy:.3f}")
    if report.rolled_back:
        lines.append(f"{report.rolled_back} steps rolled back (loss or update not finite)")
    if evaluations:
        lines.append(f"held-out before: {group_line(evaluations[0])}")
    if len(evaluations) > 1:
        lines.append(f"held-out after:  {group_line(evaluations[-1])}")
    lines.append(f"curve: {curve_prefix}.csv, {curve_prefix}.png")
    if saved:
        lines.append(f"weights saved (generation {saved.generation})")
    _emit(data, as_json, "\n".join(lines))
    if report.interrupted:
        sys.exit(130)


def _eval_figures(summary: dict) -> dict:
    """A held-out evaluation in train's JSON: overall and by group (evaluate --json has the rest)."""
    return dict(accuracy=summary["accuracy"], samples=summary["samples"],
                groups={k: g["accuracy"] for k, g in summary["groups"].items()})


@main.command()
@port_option
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between updates.")
@click.option("--count", type=int, default=None, help="Stop after N updates (default: until Ctrl-C).")
@user_errors
def monitor(url, interval, count):
    """Live view of a device's counters and learning curve.

    When another tinytrain process is feeding the device (the port has one owner), the
    monitor follows what that process reads from the device, live: its step rate and the
    mean loss over each interval, and its held-out evaluations; otherwise it polls the
    device itself. A port held by a process that publishes nothing is named (PID, command)."""
    from dataclasses import asdict

    from .portowner import holder, holder_text
    from .status import StatusWriter, follow, live_lines, owner_alive, stats_line, status_path
    path = status_path(url)
    shown = 0
    try:
        held = holder(url)
        if held is not None:
            if not (path.exists() and owner_alive(path)):
                raise TinyTrainError(f"port {url} is in use by {holder_text(held)}, which publishes no status")
            click.echo(f"following the process that feeds {url}: {holder_text(held)}")
            for line in live_lines(follow(path, poll=min(interval, 0.5), from_end=True), interval):
                click.echo(line)
                shown += 1
                if count and shown >= count:
                    return
            click.echo("the feeding process closed the port")
            return
        import time
        from .link import dropped_frames
        with _open_link(url) as link, StatusWriter(url) as status:
            d = link.describe()
            click.echo(f"{d.model_name} on {d.board} (firmware {d.firmware_version}, model {d.model_hash})")
            last = None
            while count is None or shown < count:
                st = asdict(link.stats())
                c = link.device_counters()
                counters = dict(frames_ok=c["frames_ok"], bad=dropped_frames(c))
                rate = "" if last is None else f"  {(st['steps'] - last) / interval:.1f} steps/s"
                click.echo(stats_line(st, counters, rate))
                status.write(kind="stats", stats=st, counters=counters)
                last = st["steps"]
                shown += 1
                if count is None or shown < count:
                    time.sleep(interval)
    except KeyboardInterrupt:
        pass


@main.group()
def weights():
    """Keep learned parameters: on the device's store, or in a host file."""


def _store_line(verb: str, info) -> str:
    return (f"{verb} generation {info.generation} ({info.data_bytes} B, crc {info.data_crc:08x}, "
            f"slot {info.slot}, step {info.steps})")


@weights.command("save")
@port_option
@user_errors
def weights_save(url):
    """Save the device's trainable parameters to its non-volatile store (A/B slots)."""
    with _open_link(url) as link:
        click.echo(_store_line("saved", link.save_weights()))


@weights.command("load")
@port_option
@user_errors
def weights_load(url):
    """Load the newest valid saved parameters on the device."""
    with _open_link(url) as link:
        click.echo(_store_line("loaded", link.load_weights()))


@weights.command("pull")
@port_option
@click.argument("file", type=click.Path(dir_okay=False))
@user_errors
def weights_pull(url, file):
    """Back up the device's trainable parameters to FILE (.npz)."""
    from .weightsfile import pull
    with _open_link(url) as link:
        info = pull(link, Path(file))
    click.echo(f"wrote {file}: {info['params']} parameters, {info['bytes']} B, model {info['model_hash']}")


@weights.command("push")
@port_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--save", is_flag=True, help="Also save them to the device's store.")
@user_errors
def weights_push(url, file, save):
    """Restore trainable parameters from FILE onto the device (same model only).

    Every value is checked against its parameter's type first; the device then receives
    them as one transaction: it runs exactly the old or the new weights, never a mix."""
    from .weightsfile import push
    with _open_link(url) as link:
        info = push(link, Path(file))
        if save and info["staging"] != "nv":
            link.save_weights()
    click.echo(f"restored {info['params']} parameters ({info['bytes']} B) from {file}"
               + (", saved" if save or info["staging"] == "nv" else ""))


@main.group()
def key():
    """Device keys: a build provisions one per device; this host keeps them in its key store."""


@key.command("add")
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@user_errors
def key_add(project):
    """Add the key of PROJECT (a folder made by `tinytrain build`) to this host's key store."""
    from . import keystore
    k = keystore.read_project_key(Path(project))
    keystore.add(k)
    click.echo(f"added the key of device {keystore.key_id(k).hex()} to {keystore.store_dir()}")


@key.command("list")
@user_errors
def key_list():
    """The device ids whose keys this host holds (never the keys)."""
    from . import keystore
    for kid in keystore.ids():
        click.echo(kid)


# --- semantic device management (docs/semantic.md) -------------------------------------------

store_option = click.option(
    "--store", default=None, metavar="PATH|URL", envvar="TINYTRAIN_FLEET_STORE",
    help="The fleet registry: a folder (an embedded store; default $TINYTRAIN_HOME/fleet) or a "
         "SPARQL 1.1 endpoint http://host:port/dataset (queries to URL/query, updates to URL/update).")
shapes_option = click.option("--shapes", multiple=True, type=click.Path(exists=True, dir_okay=False),
                             help="More SHACL shapes to validate against (e.g. the W3C's td-validation.ttl).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
FITS_DEVICES_SHOWN = 50      # devices `fleet query --fits` lists as text


def _registry(store, shapes=()):
    from .semantic.store import Registry
    return Registry(store, shapes)


def _read_document(file: str) -> dict:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
        return json.loads(text)
    except OSError as e:
        raise TinyTrainError(f"{file}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise TinyTrainError(f"{file}: not JSON: {e}") from None


def _prepare(reg, file: str):
    if file.endswith(".npz"):
        return reg.prepare_weights(Path(file))
    return reg.prepare(_read_document(file), name=file)


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [columns] + [["" if r.get(c) is None else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


@main.group()
def fleet():
    """A registry of devices (W3C WoT Thing Descriptions in a SPARQL store) and questions about them."""


@fleet.command("add")
@click.argument("files", nargs=-1, required=True)
@store_option
@shapes_option
@json_option
@user_errors
def fleet_add(files, store, shapes, as_json):
    """Register Thing Descriptions (FILE.json, - for stdin) or reference weights (FILE.npz).

    Every file is validated (SHACL) first; if one fails, none is registered."""
    with _registry(store, shapes) as reg:
        prepared = [_prepare(reg, f) for f in files]
        done = [reg.commit(p) for p in prepared]
    data = [dict(kind=r.kind, id=r.iri, title=r.title) for r in done]
    _emit(data, as_json, "\n".join(f"registered {r.kind} {r.iri}  {r.title}" for r in done))


def _serial_ports() -> list[str]:
    """This host's USB serial ports (ttyACM*, ttyUSB*): where real boards appear."""
    from serial.tools import list_ports
    return sorted(p.device for p in list_ports.comports() if "ttyACM" in p.device or "ttyUSB" in p.device)


@fleet.command("scan")
@click.option("--port", "urls", multiple=True, metavar="URL",
              help="Port of a device to describe (repeatable; default: this host's USB serial ports).")
@click.option("--gateway", default="http://127.0.0.1:8080", show_default=True, metavar="URL",
              help="The `tinytrain serve` that exposes these devices (the TDs' forms).")
@store_option
@json_option
@user_errors
def fleet_scan(urls, gateway, store, as_json):
    """Describe the devices attached to this host and register their Thing Descriptions."""
    from .semantic.device import Device
    from .semantic.td import thing_description
    explicit = bool(urls)
    urls = list(urls) or _serial_ports()
    found, missing = [], []
    with _registry(store) as reg:
        for url in urls:
            try:
                with Device.open(url, **({} if explicit else dict(timeout=0.3, retries=2))) as device:
                    state = device.state()
            except TinyTrainError as e:
                missing.append(dict(port=url, error=str(e)))
                continue
            r = reg.add(thing_description(state, gateway=gateway), name=url)
            found.append(dict(port=url, id=r.iri, title=r.title))
    text = "\n".join([f"registered {f['id']}  {f['title']}  ({f['port']})" for f in found]
                     + [f"no tinytrain device at {m['port']}: {m['error']}" for m in missing]) or "no ports to scan"
    _emit(dict(registered=found, not_found=missing), as_json, text)
    if explicit and missing:
        sys.exit(2)


@fleet.command("list")
@store_option
@json_option
@user_errors
def fleet_list(store, as_json):
    """The registered devices."""
    from .semantic import queries
    with _registry(store) as reg:
        rows = queries.devices(reg)
    _emit(rows, as_json, _table(rows, ["device", "board", "modelName", "modelHash", "scheme", "stepsTrained",
                                       "weightsCrc32", "host", "port"]))


@fleet.command("remove")
@click.argument("ids", nargs=-1, required=True)
@store_option
@user_errors
def fleet_remove(ids, store):
    """Remove registered devices (or reference weights) by id."""
    with _registry(store) as reg:
        for iri in ids:
            reg.remove(iri)
            click.echo(f"removed {iri}")


@fleet.command("query")
@click.argument("sparql_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--hash", "model_hash", default=None, metavar="H", help="Which devices run model hash H.")
@click.option("--fits", "fits_model", default=None, metavar="MODEL",
              help="Which boards, and which registered devices, can take MODEL (with --train SCHEME ...): "
                   "the memory plan and fit check of `tinytrain build`.")
@click.option("--diverged", is_flag=True, help="Which devices' weights differ from their fleet's.")
@click.option("--no-devices", is_flag=True, help="With --fits: only the boards.")
@click.option("--quantize", type=click.Choice(["int8"]), default=None, help="With --fits: as `build --quantize`.")
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False), default=None,
              help="With --fits: as `build --calibration`.")
@with_train_options
@store_option
@json_option
@user_errors
def fleet_query(sparql_file, model_hash, fits_model, diverged, no_devices, quantize, calibration, scheme,
                num_classes, loss, momentum, update, update_seed, lr, memory_passes, precision, loss_scale, store,
                as_json):
    """Ask the registry: --hash H, --fits MODEL, --diverged, or any SPARQL FILE.rq.

    A SPARQL file sees every registered graph as its default graph (on a remote store, if
    the server offers union-default-graph)."""
    from .semantic import queries
    chosen = [x for x in (sparql_file, model_hash, fits_model, diverged or None) if x]
    if len(chosen) != 1:
        raise TinyTrainError("give exactly one of FILE.rq, --hash H, --fits MODEL, --diverged")
    if fits_model:
        from .semantic.figures import memory_figures
        figures = memory_figures(fits_model, scheme, num_classes=num_classes, loss=loss, momentum=momentum,
                                 memory_passes=memory_passes, quantize=quantize, calibration=calibration,
                                 update=update, precision=precision, loss_scale=loss_scale)
    with _registry(store) as reg:
        if model_hash:
            rows = queries.by_hash(reg, model_hash)
            return _emit(rows, as_json, _table(rows, ["device", "board", "modelName", "scheme", "arenaBytes",
                                                      "trainableBytes", "stepsTrained", "host", "port"]))
        if fits_model:
            answer = queries.fits(reg, figures, devices=not no_devices)
            text = (f"{figures.model_name} (hash {figures.model_hash}"
                    + (f", training {scheme}" if scheme else ", inference only")
                    + f"): arena {figures.arena_bytes:,} B + trainable {figures.trainable_param_bytes:,} B, "
                      f"constants {figures.flash_bytes:,} B\n"
                    + _table([dict(r, fits="yes" if r["fits"] else "NO") for r in answer.boards],
                             ["board", "fits", "sramUsed", "sramLimit", "flashUsed", "flashLimit"]))
            if not no_devices:
                shown = answer.devices[:FITS_DEVICES_SHOWN]
                text += f"\n\ndevices on boards that fit: {len(answer.devices)}"
                if shown:
                    text += "\n" + _table(shown, ["device", "board"])
                if len(answer.devices) > len(shown):
                    text += f"\n... and {len(answer.devices) - len(shown)} more (--json lists them all)"
            return _emit(answer.as_dict(), as_json, text)
        if diverged:
            d = queries.diverged(reg)
            text = _table(d.diverged, ["device", "hash", "crc", "reference"])
            if d.undecided:
                text += "\nno reference (no registered weights, no majority) for: " + ", ".join(d.undecided)
            return _emit(dict(references=d.references, undecided=d.undecided, diverged=d.diverged), as_json, text)
        rows = reg.select(Path(sparql_file).read_text(), union=True)
        columns = list(dict.fromkeys(k for r in rows for k in r))
        _emit(rows, as_json, _table(rows, columns))


@fleet.command("check")
@click.argument("files", nargs=-1)
@store_option
@shapes_option
@json_option
@user_errors
def fleet_check(files, store, shapes, as_json):
    """Validate FILES (TDs, TMs, weights) without registering them; without FILES, validate
    everything registered. Exit 1 if anything violates a shape."""
    from .semantic.validate import InvalidDocument
    results = []
    with _registry(store, shapes) as reg:
        if files:
            for f in files:
                try:
                    _prepare(reg, f)
                    results.append(dict(document=f, violations=[]))
                except InvalidDocument as e:
                    results.append(dict(document=f, violations=[str(v) for v in e.violations]))
        else:
            for iri in reg.documents():
                found = reg.validator.violations(reg.graph_triples(iri))
                results.append(dict(document=iri, violations=[str(v) for v in found]))
    bad = [r for r in results if r["violations"]]
    text = "\n".join(f"{r['document']}: " + ("ok" if not r["violations"] else
                                             "\n  " + "\n  ".join(r["violations"])) for r in results)
    _emit(results, as_json, text or "nothing to check")
    if bad:
        sys.exit(1)


@main.command()
@click.option("--port", "urls", multiple=True, metavar="URL", help="A device to serve (repeatable).")
@click.option("--project", "projects", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Serve the running emulated board of this project (`tinytrain flash DIR --detach`).")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="Where the gateway listens (port 0: any free port).")
@click.option("--public-url", default=None, metavar="URL",
              help="The gateway's URL as clients reach it, for the TDs' forms (default: http://HOST:PORT).")
@click.option("--token-file", default=None, type=click.Path(dir_okay=False),
              help="File holding the bearer token (created with a random token if missing; "
                   "default $TINYTRAIN_HOME/gateway-token).")
@click.option("--register", "register_store", default=None, metavar="PATH|URL",
              help="Also register the served devices' TDs in this fleet registry.")
@user_errors
def serve(urls, projects, listen, public_url, token_file, register_store):
    """Serve the devices attached to this host as W3C WoT Things over HTTP (docs/semantic.md).

    Reading properties and subscribing to events is open; anything that changes a device
    (actions, property writes) needs the bearer token."""
    from .emulator import running_url
    from .project import read_manifest
    from .semantic.gateway import Gateway, read_or_create_token, token_file_default
    manifests = {}
    ports = list(urls)
    for p in projects:
        url = running_url(p)
        if url is None:
            raise TinyTrainError(f"no emulated board of {p} is running: start it with `tinytrain flash {p} --detach`")
        ports.append(url)
        manifests[url] = read_manifest(p)
    if not ports:
        raise TinyTrainError("nothing to serve: give --port URL or --project DIR")
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise TinyTrainError(f"--listen wants HOST:PORT, not {listen!r}")
    token_path = Path(token_file) if token_file else token_file_default()
    token = read_or_create_token(token_path)
    try:
        gateway = Gateway(ports, host=host, port=int(port), token=token, projects=manifests, public_url=public_url)
    except OSError as e:
        raise TinyTrainError(f"cannot listen on {listen}: {e.strerror}") from None
    with gateway:
        if register_store:
            with _registry(register_store) as reg:
                for thing in gateway.things.values():
                    reg.add(thing.td, name=thing.url)
        click.echo(f"serving {gateway.url}  (bearer token in {token_path})")
        for thing in gateway.things.values():
            click.echo(f"  {gateway.url}/things/{thing.name}  {thing.td['title']}  ({thing.url})")
        sys.stdout.flush()
        try:
            gateway.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":  # pragma: no cover
    main()
