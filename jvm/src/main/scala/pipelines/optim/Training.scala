package pipelines.optim

import scala.collection.JavaConverters._

import com.intel.analytics.bigdl.dllib.feature.dataset.{MiniBatch, Sample}
import com.intel.analytics.bigdl.dllib.nn.abstractnn.{AbstractCriterion, AbstractModule, Activity}
import com.intel.analytics.bigdl.dllib.optim.{BarrierOptimizer, OptimMethod, Optimizer, Trigger, ValidationMethod}
import com.intel.analytics.bigdl.dllib.tensor.Tensor
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.DataFrame
import org.apache.spark.sql.types.ArrayType
import pipelines.ml.Numbers

/**
 * Training on the JVM from window DataFrames, for Python (through the JVM gateway): Samples are built on the
 * executors straight from the rows, without Python workers or pickling, and either engine trains on them.
 */
object Training {

  /**
   * Labelled rows as Samples of a `shape` tensor. `features`: array<float> or array<double> of the product of
   * `shape` values, row-major (windows are (length, features)). `label`: 0 or 1, which becomes the class 1 or 2;
   * or an array of numbers, kept as the target (one 0/1 value per task, say).
   */
  def samples(frame: DataFrame, shape: Array[Int]): RDD[Sample[Float]] = {
    require(shape.nonEmpty && shape.forall(_ > 0), s"a sample's shape must be positive, not (${shape.mkString(", ")})")
    val size = shape.product
    val described = shape.mkString(" x ")
    val targets = frame.schema("label").dataType.isInstanceOf[ArrayType]
    val features = Numbers.of(frame, "features", array = true)
    val labels = Numbers.of(frame, "label", array = targets)
    frame.select("features", "label").queryExecution.toRdd.map { row =>
      require(!row.isNullAt(0) && !row.isNullAt(1), "a row has no features or no label")
      val values = row.getArray(0)
      require(values.numElements() == size, s"a row has ${values.numElements()} values, not $described = $size")
      val x = Tensor[Float](shape)
      features.fill(values, x.storage().array(), 0)
      val y = if (targets) {
        val target = row.getArray(1)
        require(target.numElements() > 0, "a row's label array is empty")
        val t = Tensor[Float](target.numElements())
        labels.fill(target, t.storage().array(), 0)
        t
      } else {
        val label = labels.get(row, 1)
        require(label == 0f || label == 1f, s"a row's label is $label, not 0 or 1")
        Tensor[Float](1).fill(label + 1f)
      }
      Sample(x, y)
    }
  }

  /** `barrier`: the project's BarrierOptimizer; `distri`: BigDL's DistriOptimizer. */
  def optimizer(engine: String, model: AbstractModule[Activity, Activity, Float], samples: RDD[Sample[Float]],
    criterion: AbstractCriterion[Activity, Activity, Float], optimMethods: java.util.Map[String, OptimMethod[Float]],
    endTrigger: Trigger, batchSize: Int): Optimizer[Float, MiniBatch[Float]] = {
    val optimizer = engine match {
      case "barrier" => new BarrierOptimizer(model, samples, criterion, batchSize)
      case "distri" => Optimizer(model, samples, criterion, batchSize)
      case other => throw new IllegalArgumentException(s"engine must be barrier or distri, not $other")
    }
    optimizer.setOptimMethods(optimMethods.asScala.toMap).setEndWhen(endTrigger)
  }

  def setValidation(optimizer: Optimizer[Float, MiniBatch[Float]], trigger: Trigger, samples: RDD[Sample[Float]],
    methods: java.util.List[ValidationMethod[Float]], batchSize: Int): Unit =
    optimizer.setValidation(trigger, samples, methods.asScala.toArray, batchSize)
}
