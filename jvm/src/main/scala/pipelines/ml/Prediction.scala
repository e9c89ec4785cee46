package pipelines.ml

import com.intel.analytics.bigdl.dllib.models.utils.ModelBroadcast
import com.intel.analytics.bigdl.dllib.nn.abstractnn.{AbstractModule, Activity}
import com.intel.analytics.bigdl.dllib.tensor.Tensor
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import com.intel.analytics.bigdl.mkl.MKL
import org.apache.spark.sql.{DataFrame, InternalFrames}
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.{GenericInternalRow, JoinedRow}
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData
import org.apache.spark.sql.types.{ArrayType, FloatType}

/**
 * One predictor for every model, for Python (through the JVM gateway): the model runs on the executors straight
 * on the DataFrame's rows (in Spark's internal form), without Python workers or pickling, and its output is added
 * to each row. The model is a BigDL module (`predict`) or an OpenVINO IR (`OpenVino.predict`).
 */
object Prediction {

  /**
   * `frame` with `outputCol` (array<float>): the model's output for the row's `featuresCol` (an array of numbers,
   * the product of `shape` of them, row-major), in batches of up to `batchSize` rows per task. The rows keep their
   * partitions and order.
   */
  def predict(model: AbstractModule[Activity, Activity, Float], frame: DataFrame, featuresCol: String,
    shape: Array[Int], outputCol: String, batchSize: Int): DataFrame = {
    val shared = ModelBroadcast[Float]().broadcast(frame.sparkSession.sparkContext, model.evaluate())
    withForward(frame, featuresCol, shape, outputCol, batchSize) { () =>
      MKL.setNumThreads(1) // one task per core
      val replica = shared.value().evaluate()
      (input: Tensor[Float]) => replica.forward(input) match {
        case tensor: Tensor[_] => tensor.asInstanceOf[Tensor[Float]]
        case other => throw new IllegalArgumentException(
          s"the model's output is a ${other.getClass.getSimpleName}, not one tensor")
      }
    }
  }

  /**
   * The rows of `frame` with `outputCol`: what `forward` gives for each batch (rows x `shape`) of their features.
   * `forwardFor` runs once per task, on the executor, and makes that task's forward function.
   */
  private[ml] def withForward(frame: DataFrame, featuresCol: String, shape: Array[Int], outputCol: String,
    batchSize: Int)(forwardFor: () => Tensor[Float] => Tensor[Float]): DataFrame = {
    require(shape.nonEmpty && shape.forall(_ > 0), s"a sample's shape must be positive, not (${shape.mkString(", ")})")
    require(batchSize > 0, s"the batch size must be positive, not $batchSize")
    require(!frame.columns.contains(outputCol), s"the rows already have a column $outputCol")
    val index = frame.schema.fieldIndex(featuresCol)
    val features = Numbers.of(frame, featuresCol, array = true)
    val size = shape.product
    val described = shape.mkString(" x ")
    val schema = frame.schema.add(outputCol, ArrayType(FloatType, containsNull = false), nullable = false)
    val rows = frame.queryExecution.toRdd.mapPartitions { part =>
      val forward = forwardFor()
      val batch = Tensor[Float](Array(batchSize) ++ shape) // one buffer per task: no large allocation per batch
      val data = batch.storage().array()
      part.map(_.copy()).grouped(batchSize).flatMap { group =>
        val input = if (group.length == batchSize) batch else batch.narrow(1, 1, group.length)
        group.zipWithIndex.foreach { case (row, i) =>
          require(!row.isNullAt(index), s"a row has no $featuresCol")
          val values = row.getArray(index)
          require(values.numElements() == size, s"a row has ${values.numElements()} values, not $described = $size")
          features.fill(values, data, i * size)
        }
        val output = forward(input).contiguous()
        require(output.nElement() % group.length == 0 && output.size(1) == group.length,
          s"the model gave (${output.size().mkString(", ")}) for a batch of ${group.length} rows")
        val width = output.nElement() / group.length
        val values = output.storage().array()
        val start = output.storageOffset() - 1
        group.zipWithIndex.map { case (row, i) =>
          val from = start + i * width
          val predicted = UnsafeArrayData.fromPrimitiveArray(java.util.Arrays.copyOfRange(values, from, from + width))
          new JoinedRow(row, new GenericInternalRow(Array[Any](predicted))): InternalRow
        }
      }
    }
    InternalFrames.create(frame.sparkSession, rows, schema)
  }
}
