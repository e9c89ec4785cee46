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
    frame.select("features", "label").rdd.map { row =>
      require(!row.isNullAt(0) && !row.isNullAt(1), "a row has no features or no label")
      val values = row.getSeq[Number](0)
      require(values.length == size, s"a row has ${values.length} values, not $described = $size")
      val x = Tensor[Float](shape)
      fill(x.storage().array(), 0, values, "features")
      val y = if (targets) {
        val target = row.getSeq[Number](1)
        require(target.nonEmpty, "a row's label array is empty")
        val t = Tensor[Float](target.length)
        fill(t.storage().array(), 0, target, "label")
        t
      } else {
        val label = row.getAs[Number](1).floatValue()
        require(label == 0f || label == 1f, s"a row's label is $label, not 0 or 1")
        Tensor[Float](1).fill(label + 1f)
      }
      Sample(x, y)
    }
  }

  /** A row's numbers into `data` from `offset`; a null is refused, naming `what` held it. */
  private[pipelines] def fill(data: Array[Float], offset: Int, values: Seq[Number], what: String): Unit = {
    var i = offset
    values.foreach { value =>
      require(value != null, s"a row's $what hold a null")
      data(i) = value.floatValue()
      i += 1
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
