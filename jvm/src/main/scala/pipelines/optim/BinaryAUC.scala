package pipelines.optim

import com.intel.analytics.bigdl.dllib.nn.abstractnn.Activity
import com.intel.analytics.bigdl.dllib.optim.{ValidationMethod, ValidationResult}
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric

/**
 * ROC-AUC or PR-AUC (average precision) of a two-class classifier whose output is (batch, 2) log-probabilities
 * (LogSoftMax) and whose target is the class, 1 or 2 (2 = positive), as a BigDL validation method: so that
 * `DistriOptimizer` validates with it every epoch and its ValidationSummary records it.
 *
 * Each batch counts positives and negatives per bin of the log-odds log p2 - log p1 (`bins` bins over
 * [-limit, limit], the ends open); the areas follow from the merged counts, scores within one bin counting as
 * ties, as `pipelines.evaluation.metrics.binary_metrics` computes them over distinct scores.
 */
class BinaryAUC[T](val curve: String, val bins: Int = 32768, val limit: Double = 50.0)
  (implicit ev: TensorNumeric[T]) extends ValidationMethod[T] {

  require(curve == "roc" || curve == "pr", s"BinaryAUC: curve must be roc or pr, not $curve")
  require(bins > 1 && limit > 0, "BinaryAUC: bins must be > 1 and limit > 0")

  override def apply(output: Activity, target: Activity): ValidationResult = {
    val logProbs = output.toTensor[T]
    val labels = target.toTensor[T]
    require(logProbs.dim() == 2 && logProbs.size(2) == 2,
      s"BinaryAUC: output must be (batch, 2) log-probabilities, got (${logProbs.size().mkString(", ")})")
    require(labels.nElement() == logProbs.size(1), "BinaryAUC: one target per output row")
    val flatLabels = labels.contiguous().view(labels.nElement())
    val positives = new Array[Long](bins)
    val negatives = new Array[Long](bins)
    var i = 1
    while (i <= logProbs.size(1)) {
      val logOdds = ev.toType[Double](logProbs.valueAt(i, 2)) - ev.toType[Double](logProbs.valueAt(i, 1))
      val bin = math.max(0, math.min(bins - 1, ((logOdds + limit) / (2 * limit) * bins).toInt))
      val label = ev.toType[Double](flatLabels.valueAt(i))
      require(label == 1.0 || label == 2.0, s"BinaryAUC: targets must be 1 or 2, got $label")
      if (label == 2.0) positives(bin) += 1 else negatives(bin) += 1
      i += 1
    }
    new BinaryAUCResult(curve, positives, negatives)
  }

  override def format(): String = BinaryAUC.name(curve)
}

object BinaryAUC {
  /** The summary tag: RocAuc or PrAuc. */
  def name(curve: String): String = if (curve == "roc") "RocAuc" else "PrAuc"

  /** For Python (through the JVM gateway). */
  def create(curve: String): BinaryAUC[Float] = new BinaryAUC[Float](curve)
}

class BinaryAUCResult(val curve: String, val positives: Array[Long], val negatives: Array[Long])
  extends ValidationResult {

  override def result(): (Float, Int) = (area.toFloat, (positives.sum + negatives.sum).toInt)

  /** NaN when one class is absent. */
  def area: Double = {
    val p = positives.sum.toDouble
    val n = negatives.sum.toDouble
    if (p == 0 || n == 0) return Double.NaN
    var tp = 0.0
    var fp = 0.0
    var sum = 0.0
    var b = positives.length - 1
    while (b >= 0) {
      val pos = positives(b).toDouble
      val neg = negatives(b).toDouble
      tp += pos
      fp += neg
      if (curve == "roc") sum += neg * (2 * tp - pos) else if (pos > 0) sum += pos * tp / (tp + fp)
      b -= 1
    }
    if (curve == "roc") sum / (2 * p * n) else sum / p
  }

  override def +(other: ValidationResult): ValidationResult = {
    val that = other.asInstanceOf[BinaryAUCResult]
    require(that.curve == curve && that.positives.length == positives.length, "BinaryAUC: results differ in kind")
    new BinaryAUCResult(curve, BinaryAUCResult.sum(positives, that.positives),
      BinaryAUCResult.sum(negatives, that.negatives))
  }

  override def format(): String =
    s"${BinaryAUC.name(curve)}: ${area} (${positives.sum} positives, ${negatives.sum} negatives)"
}

object BinaryAUCResult {
  private def sum(a: Array[Long], b: Array[Long]): Array[Long] = {
    val out = new Array[Long](a.length)
    var i = 0
    while (i < a.length) {
      out(i) = a(i) + b(i)
      i += 1
    }
    out
  }
}
