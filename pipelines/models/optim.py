"""Optimisers from config: learning-rate scaling with the batch size, warm-up then decay, LARS, clipping.

BigDL applies a learning-rate schedule to SGD and to LARS (SGD with a layer-wise rate); its Adam takes a
fixed rate. LARS (`optim.LarsSGD`) exists in BigDL's JVM only and is created here through the gateway,
one optimiser per layer with parameters, as `DistriOptimizer` wants for its layer-wise gradient norms.
"""

from __future__ import annotations

import math

from pipelines.config import TrainConfig


def scaled_learning_rate(config: TrainConfig, batch_size: int) -> float:
    """The peak learning rate for `batch_size`, from `learning_rate` tuned at `base_batch_size`."""
    ratio = batch_size / config.base_batch_size
    factor = {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[config.lr_scaling]
    return config.learning_rate * factor


def learning_rate_plan(config: TrainConfig, *, batch_size: int, iterations_per_epoch: int) -> dict:
    """What the schedule will do, for logs and records: start and peak rate, warm-up and total iterations."""
    peak = scaled_learning_rate(config, batch_size)
    warmup = int(round(config.warmup_epochs * iterations_per_epoch))
    # Warm-up climbs from the rate tuned at the base batch size (Goyal et al. 2017), or from a tenth of
    # the peak when that rate is not below it.
    start = peak if not warmup else (config.learning_rate if config.learning_rate < peak else peak / 10)
    return {
        "optimizer": config.optimizer,
        "start": start,
        "peak": peak,
        "warmup_iterations": warmup,
        "total_iterations": config.epochs * iterations_per_epoch,
        "schedule": config.schedule,
    }


def make_schedule(config: TrainConfig, *, iterations_per_epoch: int, plan: dict):
    """A BigDL LearningRateSchedule: optional linear warm-up from `start` to `peak`, then the decay."""
    from bigdl.dllib.optim.optimizer import Default, Exponential, Plateau, Poly, SequentialSchedule, Step, Warmup

    total, warmup = plan["total_iterations"], plan["warmup_iterations"]
    step = max(int(round(config.step_epochs * iterations_per_epoch)), 1)
    if config.schedule == "poly":
        # BigDL's Poly counts iterations from the start of training, warm-up included.
        decay = Poly(config.decay_power, total)
    elif config.schedule == "step":
        decay = Step(step, config.gamma)
    elif config.schedule == "exponential":
        decay = Exponential(step, config.gamma)
    elif config.schedule == "plateau":
        decay = Plateau("Loss", factor=config.gamma, patience=config.plateau_patience, mode="min")
    else:
        decay = Default()
    if not warmup:
        return decay
    schedule = SequentialSchedule(iterations_per_epoch)
    schedule.add(Warmup((plan["peak"] - plan["start"]) / warmup), warmup)
    # Open-ended, so that training past the planned iterations (a resume with more epochs) keeps the decay's rate.
    schedule.add(decay, 10**9)
    return schedule


def make_optim_methods(model, config: TrainConfig, *, batch_size: int, iterations_per_epoch: int):
    """The OptimMethod for the model (a dict of one per layer for LARS), and the learning-rate plan."""
    from bigdl.dllib.optim.optimizer import SGD, Adam

    plan = learning_rate_plan(config, batch_size=batch_size, iterations_per_epoch=iterations_per_epoch)
    if config.optimizer == "adam":
        return Adam(learningrate=plan["peak"]), plan
    if config.optimizer == "sgd":
        schedule = make_schedule(config, iterations_per_epoch=iterations_per_epoch, plan=plan)
        method = SGD(
            learningrate=plan["start"],
            momentum=config.momentum,
            dampening=0.0,
            nesterov=config.nesterov,
            weightdecay=config.weight_decay,
            leaningrate_schedule=schedule,
        )
        return method, plan
    methods = lars_optim_methods(
        model,
        trust=config.lars_trust,
        learning_rate=plan["start"],
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        new_schedule=lambda: make_schedule(config, iterations_per_epoch=iterations_per_epoch, plan=plan),
    )
    return methods, plan


def lars_optim_methods(
    model, *, trust: float, learning_rate: float, weight_decay: float, momentum: float, new_schedule
):
    """{layer name: LarsSGD} for every layer with parameters, each with a schedule of its own.

    BigDL's `LarsSGD.createOptimForModule` shares one schedule object between the layers, and a
    SequentialSchedule shared that way moves on only for the first layer; so its map gives the names
    and each layer gets a fresh LarsSGD here.
    """
    from bigdl.dllib.optim.optimizer import Default, OptimMethod
    from bigdl.dllib.utils.common import get_spark_context

    jvm = get_spark_context()._jvm
    class_tag = getattr(getattr(jvm.scala.reflect, "ClassTag$"), "MODULE$").Float()
    numeric = getattr(
        getattr(jvm.com.intel.analytics.bigdl.dllib.tensor, "TensorNumericMath$TensorNumeric$NumericFloat$"), "MODULE$"
    )
    lars = jvm.com.intel.analytics.bigdl.dllib.optim.LarsSGD
    layers = lars.createOptimForModule(
        model.value, trust, learning_rate, 0.0, weight_decay, momentum, Default().value, class_tag, numeric
    )
    names = sorted(jvm.scala.collection.JavaConverters.mapAsJavaMap(layers).keySet())
    methods = {}
    for i, name in enumerate(names):
        schedule = new_schedule()
        method = lars(i == 0, trust, learning_rate, 0.0, weight_decay, momentum, schedule.value, class_tag, numeric)
        methods[name] = OptimMethod(method, "float")
    return methods


def set_gradient_clipping(optimizer, config: TrainConfig) -> None:
    """Clip gradients by value (|g| <= clip_value) and/or by their global L2 norm (<= clip_norm); 0 turns off."""
    if config.clip_value > 0:
        optimizer.set_gradclip_const(-config.clip_value, config.clip_value)
    if config.clip_norm > 0:
        optimizer.set_gradclip_l2norm(config.clip_norm)
