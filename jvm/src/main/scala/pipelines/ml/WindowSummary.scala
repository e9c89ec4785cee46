package pipelines.ml

import org.apache.spark.sql.SparkSession

/**
 * A window's summary for classic models (`pipelines.evaluation.peers`): per feature of a row-major (length x
 * features) window, its last value, minimum, maximum, mean and change (last minus first), in one pass.
 */
object WindowSummary {
  val Name = "window_summary"

  /** `values`: as Spark hands an array column to a Scala UDF, a `List`; indexed once copied into an array. */
  def summarise(window: Seq[Double], length: Int, features: Int): Array[Double] = {
    val values = window.toArray
    require(values.length == length * features, s"features must hold $length x $features values")
    val out = new Array[Double](5 * features)
    var j = 0
    while (j < features) {
      var (low, high, total) = (Double.PositiveInfinity, Double.NegativeInfinity, 0.0)
      var t = 0
      while (t < length) {
        val x = values(t * features + j)
        if (x < low) low = x
        if (x > high) high = x
        total += x
        t += 1
      }
      val (first, last) = (values(j), values((length - 1) * features + j))
      Array(last, low, high, total / length, last - first).copyToArray(out, 5 * j)
      j += 1
    }
    out
  }

  /** `window_summary(features, length, n_features)` in SQL, for Python (through the JVM gateway). */
  def register(spark: SparkSession): Unit =
    spark.udf.register(Name, (values: Seq[Double], length: Int, features: Int) =>
      if (values == null) null else summarise(values, length, features))
}
