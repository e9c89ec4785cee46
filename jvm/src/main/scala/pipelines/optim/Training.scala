package pipelines.optim

import scala.collection.JavaConverters._

import com.intel.analytics.bigdl.dllib.feature.dataset.{MiniBatch, Sample}
import com.intel.analytics.bigdl.dllib.nn.abstractnn.{AbstractCriterion, AbstractModule, Activity}
import com.intel.analytics.bigdl.dllib.optim.{BarrierOptimizer, OptimMethod, Optimizer, Trigger, ValidationMethod}
import com.intel.analytics.bigdl.dllib.tensor.Tensor
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.DataFrame

/**
 * Training on the JVM from window DataFrames, for Python (through the JVM gateway): Samples are built on the
 * executors straight from the rows, without Python workers or pickling, and either engine trains on them.
 */
object Training {

  /**
   * Labelled rows (`features`: array<float> or array<double> of the product of `shape` values, row-major;
   * `label`: 0 or 1) as Samples of a `shape` tensor and the class 1 or 2: windows are (length, features).
   */
  def samples(frame: DataFrame, shape: Array[Int]): RDD[Sample[Float]] = {
    require(shape.nonEmpty && shape.forall(_ > 0), s"a sample's shape must be positive, not (${shape.mkString(", ")})")
    val size = shape.product
    val described = shape.mkString(" x ")
    frame.select("features", "label").rdd.map { row =>
      require(!row.isNullAt(0) && !row.isNullAt(1), "a row has no features or no label")
      val values = row.getSeq[Number](0)
      require(values.length == size, s"a row has ${values.length} values, not $described = $size")
      val label = row.getAs[Number](1).floatValue()
      require(label == 0f || label == 1f, s"a row's label is $label, not 0 or 1")
      val x = Tensor[Float](shape)
      val data = x.storage().array()
      var i = 0
      values.foreach { value =>
        require(value != null, "a row's features hold a null")
        data(i) = value.floatValue()
        i += 1
      }
      val y = Tensor[Float](1)
      y.setValue(1, label + 1f)
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
