// In BigDL's package, as BigDL's own optimizers are: it uses BigDL's package-private API (flat parameters,
// optimiser state, parameter processors, summary triggers).
package com.intel.analytics.bigdl.dllib.optim

import java.io.{ByteArrayInputStream, ByteArrayOutputStream, ObjectInputStream, ObjectOutputStream, ObjectStreamClass}
import java.text.SimpleDateFormat
import java.util.Date

import scala.collection.mutable.ArrayBuffer

import com.intel.analytics.bigdl.dllib.feature.dataset.{DataSet, MiniBatch, Sample, SampleToMiniBatch}
import com.intel.analytics.bigdl.dllib.nn.abstractnn.{AbstractCriterion, AbstractModule, Activity}
import com.intel.analytics.bigdl.dllib.optim.parameters.ParameterProcessor
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import com.intel.analytics.bigdl.dllib.utils.{Engine, RandomGenerator, T, Table}
import com.intel.analytics.bigdl.mkl.MKL
import org.apache.logging.log4j.LogManager
import org.apache.spark.{HashPartitioner, SparkException, TaskContext}
import org.apache.spark.rdd.RDD
import org.apache.spark.storage.StorageLevel

/**
 * Synchronous data-parallel training as BigDL's `DistriOptimizer` does it (one model replica per core, each
 * iteration's gradient averaged over all replicas before the optimiser's step), run as Spark barrier jobs.
 *
 * `DistriOptimizer` launches two Spark jobs per iteration and moves gradients and weights through the block
 * manager; on small recurrent models that costs more than the arithmetic. Here one barrier job runs every
 * iteration up to the next event (the end of an epoch that validates or checkpoints, or the end of training):
 * each task keeps its replica, its share of the data and a copy of the optimisers; after each backward pass the
 * tasks send their gradients to the driver's [[GradientHub]], which sums them in partition order and sends the
 * sums back, so that every replica takes the same step and stays bit-identical. Between jobs the driver holds
 * the model and the optimisers: it writes the summaries, validates and checkpoints as `DistriOptimizer` does
 * (same tags, same snapshot names), so resuming, TensorBoard and per-layer optimisers (LARS) work unchanged.
 * A lost executor fails the barrier job, and the driver reruns the whole stretch from its copy.
 */
class BarrierOptimizer(
  trainingModel: AbstractModule[Activity, Activity, Float],
  samples: RDD[Sample[Float]],
  trainingCriterion: AbstractCriterion[Activity, Activity, Float],
  val batchSize: Int
) extends Optimizer[Float, MiniBatch[Float]](
  trainingModel, (DataSet.rdd(samples) -> SampleToMiniBatch[Float](batchSize)).toDistributed(), trainingCriterion) {

  import BarrierOptimizer._

  /** The validation Samples as given, with the global batch size: validated in their own partitions. */
  private var validationSamples: Option[(RDD[Sample[Float]], Int)] = None

  override def setValidation(trigger: Trigger, sampleRDD: RDD[Sample[Float]],
    vMethods: Array[ValidationMethod[Float]], batchSize: Int): this.type = {
    validationSamples = Some((sampleRDD, batchSize))
    super.setValidation(trigger, sampleRDD, vMethods, batchSize)
  }

  override def optimize(): AbstractModule[Activity, Activity, Float] = {
    val workers = Engine.nodeNumber() * Engine.coreNumber()
    require(batchSize % workers == 0, s"batch size $batchSize must be a multiple of the $workers cores")
    val (data, release) = prepared(samples, workers)
    val numSamples = data.count()
    if (numSamples < batchSize) {
      release()
      throw new IllegalArgumentException(s"batch size $batchSize is larger than the $numSamples training samples")
    }
    require(validationDataSet.isEmpty || validationSamples.isDefined,
      "BarrierOptimizer validates on an RDD of Samples: setValidation(trigger, samples, methods, batchSize)")
    val releaseValidation = validationSamples.map { case (rdd, _) => cached(rdd) }.getOrElse(() => ())
    val first = optimMethods.values.head.state
    state("epoch") = first.get[Int]("epoch").getOrElse(1)
    state("neval") = first.get[Int]("neval").getOrElse(1)
    state("recordsProcessedThisEpoch") = first.get[Int]("recordsProcessedThisEpoch").getOrElse(0)
    state("Loss") = first.get[Float]("Loss").getOrElse(Float.PositiveInfinity)
    state("score") = first.get[Float]("score").getOrElse(0f)
    val snapshotPath = checkpointPath.map(_ + "/" + new SimpleDateFormat("yyyyMMdd_HHmmss").format(new Date()))
    val weights = model.getParameters()._1
    val driverHost = data.sparkContext.getConf.get("spark.driver.host",
      java.net.InetAddress.getLocalHost.getHostAddress)
    val hub = new GradientHub(driverHost, workers, weights.nElement())
    // The data order follows BigDL's generator, so that a seeded run (RNG().set_seed in Python) repeats itself.
    val seed = (RandomGenerator.RNG.random().toLong << 32) ^ (RandomGenerator.RNG.random().toLong & 0xffffffffL)
    var wallClock = 0L
    try {
      while (!endWhen(state)) {
        val started = System.nanoTime()
        val plan = Stretch(model, criterion, optimMethods, parameterProcessors.toArray, endWhen,
          validationTrigger ++ checkpointTrigger, copyOf(state), batchSize, workers, numSamples, hub.address, hub.token,
          seed)
        val job = data.sparkContext.broadcast(plan)
        val result = retrying(state[Int]("neval")) {
          val attempt = hub.open()
          data.barrier().mapPartitions(part => train(job.value, attempt, part)).collect().head
        }
        job.destroy()
        System.arraycopy(result.weights, 0, weights.storage().array(), weights.storageOffset() - 1,
          result.weights.length)
        optimMethods = result.optimMethods
        wallClock += System.nanoTime() - started
        val fired = result.steps.map(step => record(step, numSamples, wallClock)).last
        if (fired._1) validate()
        if (fired._2) checkpoint(snapshotPath)
      }
    } finally {
      hub.close()
      release()
      releaseValidation()
    }
    model
  }

  /**
   * The training Samples cached with one partition per replica, and how to release them. Partitions are kept when
   * there are as many (a DataFrame repartitioned by rows, say); otherwise the Samples are dealt out in turn, so
   * that the replicas' shares differ by one sample at most (the source is read once).
   */
  private def prepared(samples: RDD[Sample[Float]], workers: Int): (RDD[Sample[Float]], () => Unit) = {
    if (samples.getNumPartitions == workers) return (samples, cached(samples))
    val persisted = samples.getStorageLevel == StorageLevel.NONE
    val source = if (persisted) samples.persist(StorageLevel.MEMORY_ONLY) else samples
    val data = source.zipWithIndex().map { case (sample, index) => ((index % workers).toInt, sample) }
      .partitionBy(new HashPartitioner(workers)).values.persist(StorageLevel.MEMORY_ONLY)
    data.count()
    if (persisted) source.unpersist(blocking = false)
    (data, () => data.unpersist())
  }

  /** Persists `samples` unless they are already; how to release what was persisted here. */
  private def cached(samples: RDD[Sample[Float]]): () => Unit = {
    if (samples.getStorageLevel != StorageLevel.NONE) return () => ()
    samples.persist(StorageLevel.MEMORY_ONLY)
    () => samples.unpersist(blocking = false)
  }

  /**
   * Spark never reruns a failed barrier result stage (a lost executor, say): the driver reruns the stretch from
   * its own copy of the model, up to `bigdl.failure.retryTimes` times in a row, as DistriOptimizer retries.
   */
  private def retrying[A](iteration: Int)(job: => A): A = {
    val attempts = System.getProperty("bigdl.failure.retryTimes", "5").toInt
    var failures = 0
    while (true) {
      try {
        return job
      } catch {
        case failure: SparkException if failures < attempts =>
          failures += 1
          logger.warn(s"training from iteration $iteration failed ($failures of $attempts retries): " +
            s"${failure.getMessage.linesIterator.next()}; running it again")
      }
    }
    throw new IllegalStateException("unreachable")
  }

  /**
   * The driver's state after one iteration, its log line and train summaries, as DistriOptimizer keeps them;
   * whether validation and a checkpoint are due (the stateful triggers see every iteration, as there).
   */
  private def record(step: Step, numSamples: Long, wallClock: Long): (Boolean, Boolean) = {
    state("neval") = step.neval
    state("epoch") = step.epoch
    state("recordsProcessedThisEpoch") = step.records
    state("Loss") = step.loss
    state("LearningRate") = step.learningRate
    state("Throughput") = (batchSize / step.seconds).toFloat
    logger.info(s"[Epoch ${step.trainedEpoch} ${step.trainedRecords}/$numSamples][Iteration ${step.neval - 1}]" +
      s"[Wall Clock ${wallClock / 1e9}s] Trained $batchSize records in ${step.seconds} seconds. " +
      s"Loss is ${step.loss}.")
    trainSummary.foreach { summary =>
      summary.getScalarTriggers().foreach { case (tag, trigger) =>
        if (trigger(state) && state.contains(tag)) summary.addScalar(tag, state[Float](tag), step.neval - 1)
      }
    }
    (validationTrigger.exists(_(state)), checkpointTrigger.exists(_(state)))
  }

  private def validate(): Unit = {
    if (validationDataSet.isEmpty || validationMethods.isEmpty) return
    val methods = validationMethods.get
    val (rows, globalBatch) = validationSamples.get
    val perTask = math.max(1, globalBatch / (Engine.nodeNumber() * Engine.coreNumber()))
    val job = rows.sparkContext.broadcast((model, methods))
    val results = rows.mapPartitions { part =>
      val (template, shared) = job.value
      val replica = template.cloneModule().evaluate()
      val local = shared.map(_.clone())
      val batch = MiniBatch[Float](1, 1) // not SampleToMiniBatch: it asks BigDL's Engine, unset on executors
      part.grouped(perTask).map { group =>
        batch.set(group)
        val output = replica.forward(batch.getInput())
        local.map(_.apply(output, batch.getTarget()))
      }
    }.reduce((a, b) => a.zip(b).map { case (x, y) => x + y })
    job.destroy()
    state("score") = results(0).result()._1
    optimMethods.values.foreach(_.state("score") = state[Float]("score"))
    results.zip(methods).foreach { case (result, method) =>
      logger.info(s"[Epoch ${state[Int]("epoch")}][Iteration ${state[Int]("neval")}] $method is $result")
      validationSummary.foreach(_.addScalar(method.toString(), result.result()._1, state[Int]("neval") - 1))
    }
  }

  private def checkpoint(path: Option[String]): Unit = {
    if (path.isEmpty) return
    val postfix = s".${state[Int]("neval")}"
    model.save(s"${path.get}/model$postfix", isOverWrite)
    optimMethods.foreach { case (name, method) =>
      method.state("epoch") = state[Int]("epoch")
      method.state("neval") = state[Int]("neval")
      method.save(s"${path.get}/optimMethod-$name$postfix", isOverWrite)
    }
    logger.info(s"Saved model and optimisers to ${path.get} (iteration ${state[Int]("neval")})")
  }
}

object BarrierOptimizer {
  private val logger = LogManager.getLogger(getClass)

  /** What each task of one barrier job starts from. */
  case class Stretch(
    model: AbstractModule[Activity, Activity, Float],
    criterion: AbstractCriterion[Activity, Activity, Float],
    optimMethods: Map[String, OptimMethod[Float]],
    processors: Array[ParameterProcessor],
    endWhen: Trigger,
    events: Iterable[Trigger],
    state: Table,
    batchSize: Int,
    workers: Int,
    numSamples: Long,
    hub: String,
    token: Long,
    seed: Long)

  /**
   * One iteration as the driver records it: the counters after it, its mean loss, rate and duration, and the
   * epoch it belonged to with the records it had trained in that epoch.
   */
  case class Step(neval: Int, epoch: Int, records: Int, loss: Float, learningRate: Float, seconds: Double,
    trainedEpoch: Int, trainedRecords: Int)

  /** Partition 0's result: the weights and optimisers at the end of the stretch, and its iterations. */
  case class Result(weights: Array[Float], optimMethods: Map[String, OptimMethod[Float]], steps: Array[Step])

  def copyOf(table: Table): Table = {
    val copy = T()
    table.keySet.foreach(key => copy(key) = table[Any](key))
    copy
  }

  /** A deep copy: the tasks of one executor share a broadcast value, and the triggers and optimisers have state. */
  private def deepCopy[A <: AnyRef](value: A): A = {
    val bytes = new ByteArrayOutputStream()
    val out = new ObjectOutputStream(bytes)
    out.writeObject(value)
    out.close()
    val in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray)) {
      override def resolveClass(desc: ObjectStreamClass): Class[_] =
        Class.forName(desc.getName, false, Thread.currentThread().getContextClassLoader)
    }
    in.readObject().asInstanceOf[A]
  }

  private def train(shared: Stretch, attempt: Int, partition: Iterator[Sample[Float]]): Iterator[Result] = {
    // Not BarrierTaskContext.get(): in Spark 3.5 that starts a non-daemon timer thread, which keeps a local-mode
    // driver JVM (spark-submit --master local[N]) from exiting.
    val context = TaskContext.get()
    MKL.setNumThreads(1)
    val plan = deepCopy(shared)
    val model = plan.model
    model.training()
    val criterion = plan.criterion
    val (weights, gradients) = model.getParameters()
    val methods = plan.optimMethods
    methods.values.foreach {
      case lars: LarsSGD[Float] => lars.calculatedTrust = None // transient: null once deserialised
      case _ =>
    }
    val slices = methods.toSeq.map { case (name, method) =>
      (method, model(name).getOrElse(throw new IllegalArgumentException(s"no module $name")).getParameters())
    }
    val endWhen = plan.endWhen
    val events = plan.events.toArray
    val state = plan.state
    val local = partition.toArray
    require(local.nonEmpty, s"partition ${context.partitionId()} of the training data is empty")
    val localBatch = plan.batchSize / plan.workers
    val batch = MiniBatch[Float](1, 1)
    val chosen = new Array[Sample[Float]](localBatch)
    var order = shuffled(local.length, plan.seed, state[Int]("epoch"), context.partitionId())
    val steps = ArrayBuffer[Step]()
    val total = new Array[Float](gradients.nElement())
    val grad = gradients.storage().array()
    val offset = gradients.storageOffset() - 1
    val hub = new GradientHub.Client(plan.hub, plan.token, attempt, context.partitionId(), gradients.nElement())
    try {
      var stop = false
      while (!stop) {
        val started = System.nanoTime()
        val epoch = state[Int]("epoch")
        val position = state[Int]("recordsProcessedThisEpoch") / plan.workers
        var i = 0
        while (i < localBatch) {
          chosen(i) = local(order((position + i) % local.length))
          i += 1
        }
        batch.set(chosen)
        model.zeroGradParameters()
        val output = model.forward(batch.getInput())
        val loss = criterion.forward(output, batch.getTarget())
        model.backward(batch.getInput(), criterion.backward(output, batch.getTarget()))

        val lossSum = hub.reduce(loss, grad, offset, total)
        i = 0
        while (i < total.length) {
          grad(offset + i) = total(i) / plan.workers
          i += 1
        }
        val meanLoss = (lossSum / plan.workers).toFloat
        plan.processors.foreach(_.processParameters(model, state))
        slices.foreach { case (method, (w, g)) =>
          method.state("epoch") = state[Int]("epoch")
          method.state("neval") = state[Int]("neval")
          method.optimize(_ => (meanLoss, g), w)
        }
        val learningRate = -methods.values.head.getLearningRate().toFloat
        state("Loss") = meanLoss
        state("neval") = state[Int]("neval") + 1
        state("recordsProcessedThisEpoch") = state[Int]("recordsProcessedThisEpoch") + plan.batchSize
        if (state[Int]("recordsProcessedThisEpoch") >= plan.numSamples) {
          state("epoch") = state[Int]("epoch") + 1
          state("recordsProcessedThisEpoch") = 0
          order = shuffled(local.length, plan.seed, state[Int]("epoch"), context.partitionId())
        }
        methods.values.foreach { method =>
          method.state("Loss") = meanLoss
          method.state("score") = state[Float]("score")
          method.state("recordsProcessedThisEpoch") = state[Int]("recordsProcessedThisEpoch")
          method.state("epoch") = state[Int]("epoch")
          method.state("neval") = state[Int]("neval")
        }
        steps += Step(state[Int]("neval"), state[Int]("epoch"), state[Int]("recordsProcessedThisEpoch"), meanLoss,
          learningRate, (System.nanoTime() - started) / 1e9, epoch, position * plan.workers + plan.batchSize)
        stop = endWhen(state) | events.map(_(state)).exists(identity)
      }
    } finally {
      hub.close()
    }
    if (context.partitionId() == 0) {
      val out = new Array[Float](weights.nElement())
      System.arraycopy(weights.storage().array(), weights.storageOffset() - 1, out, 0, out.length)
      Iterator(Result(out, methods, steps.toArray))
    } else {
      Iterator.empty
    }
  }

  /** The same permutation of a partition in every job of one epoch, a new one each epoch (and each run). */
  private def shuffled(n: Int, seed: Long, epoch: Int, partition: Int): Array[Int] = {
    val random = new scala.util.Random(seed + epoch.toLong * 1000003L + partition)
    random.shuffle((0 until n).toIndexedSeq).toArray
  }
}
