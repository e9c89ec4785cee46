package pipelines.ml

import org.apache.spark.sql.DataFrame
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.util.ArrayData
import org.apache.spark.sql.types._

/**
 * Numbers read from rows in Spark's internal form into float buffers, without boxing: a numeric column, or an array
 * of numbers. Nulls are refused, naming the column.
 */
private[pipelines] final class Numbers(val column: String, elementType: DataType) extends Serializable {

  /** `array`'s values into `data` from `offset`. */
  def fill(array: ArrayData, data: Array[Float], offset: Int): Unit = {
    val n = array.numElements()
    var i = 0
    elementType match {
      case FloatType =>
        while (i < n) {
          if (array.isNullAt(i)) refuseNull()
          data(offset + i) = array.getFloat(i)
          i += 1
        }
      case DoubleType =>
        while (i < n) {
          if (array.isNullAt(i)) refuseNull()
          data(offset + i) = array.getDouble(i).toFloat
          i += 1
        }
      case _ =>
        while (i < n) {
          if (array.isNullAt(i)) refuseNull()
          data(offset + i) = integral(array.get(i, elementType))
          i += 1
        }
    }
  }

  private def refuseNull(): Nothing = throw new IllegalArgumentException(s"a row's $column hold a null")

  private def integral(value: Any): Float = value.asInstanceOf[Number].floatValue()

  /** The number in field `ordinal` of `row`. */
  def get(row: InternalRow, ordinal: Int): Float = {
    require(!row.isNullAt(ordinal), s"a row has no $column")
    elementType match {
      case FloatType => row.getFloat(ordinal)
      case DoubleType => row.getDouble(ordinal).toFloat
      case _ => integral(row.get(ordinal, elementType))
    }
  }
}

private[pipelines] object Numbers {
  private val numeric: Set[DataType] = Set(FloatType, DoubleType, IntegerType, LongType, ShortType, ByteType)

  /** A reader of `column` of `frame`: an array of numbers (`array = true`) or a number. */
  def of(frame: DataFrame, column: String, array: Boolean): Numbers = {
    val element = frame.schema(column).dataType match {
      case ArrayType(t, _) if array => t
      case t if !array => t
      case other => other
    }
    require(numeric.contains(element),
      s"$column must be ${if (array) "an array of numbers" else "a number"}, not ${frame.schema(column).dataType.simpleString}")
    new Numbers(column, element)
  }
}
