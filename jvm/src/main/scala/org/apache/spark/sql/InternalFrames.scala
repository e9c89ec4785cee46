package org.apache.spark.sql

import org.apache.spark.rdd.RDD
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.types.StructType

/**
 * A DataFrame over rows already in Spark's internal form (`SparkSession.internalCreateDataFrame`, which Spark keeps
 * to its own package): the project's predictor adds its output to the rows without converting every value of every
 * row to a JVM object and back.
 */
object InternalFrames {
  def create(spark: SparkSession, rows: RDD[InternalRow], schema: StructType): DataFrame =
    spark.internalCreateDataFrame(rows, schema)
}
