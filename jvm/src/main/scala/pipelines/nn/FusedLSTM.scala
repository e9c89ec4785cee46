package pipelines.nn

import com.intel.analytics.bigdl.dllib.nn.abstractnn.TensorModule
import com.intel.analytics.bigdl.dllib.tensor.Tensor
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric
import com.intel.analytics.bigdl.dllib.utils.{T, Table}

import scala.reflect.ClassTag

/**
 * An LSTM layer that runs a whole sequence as one module: (batch, time, inputSize) in, and out either the
 * hidden state of every step (batch, time, hiddenSize) or, with `returnSequences = false`, of the last
 * step only (batch, hiddenSize).
 *
 * The same cell as BigDL's `Recurrent().add(LSTM(inputSize, hiddenSize))`, with its parameters in the same
 * order and shapes: input-to-gates weight (4H x inputSize), gate bias (4H), hidden-to-gates weight (4H x H),
 * gates in the order input, cell candidate, forget, output. Initial hidden and cell states are zero.
 *
 * The input projection of all steps is one GEMM, each step one GEMM for the recurrent term and one pass over
 * contiguous buffers for the gates and the cell; backpropagation through time has the same structure, and the
 * weight gradients are one GEMM each over all steps. Buffers are kept time-major and reused between calls.
 * Float only (the precision BigDL's Python API trains in).
 */
@SerialVersionUID(1L)
class FusedLSTM[D: ClassTag](
  val inputSize: Int,
  val hiddenSize: Int,
  val returnSequences: Boolean = false
)(implicit ev: TensorNumeric[D]) extends TensorModule[D] {

  require(inputSize > 0 && hiddenSize > 0,
    s"FusedLSTM: inputSize and hiddenSize must be positive, got $inputSize and $hiddenSize")
  require(implicitly[ClassTag[D]] == ClassTag.Float, "FusedLSTM supports float models only")

  private val gateWidth = 4 * hiddenSize

  val weight: Tensor[D] = Tensor[D](gateWidth, inputSize)
  val bias: Tensor[D] = Tensor[D](gateWidth)
  val recurrentWeight: Tensor[D] = Tensor[D](gateWidth, hiddenSize)
  val gradWeight: Tensor[D] = Tensor[D](gateWidth, inputSize)
  val gradBias: Tensor[D] = Tensor[D](gateWidth)
  val gradRecurrentWeight: Tensor[D] = Tensor[D](gateWidth, hiddenSize)

  // Work buffers, time-major; rebuilt after deserialisation rather than shipped with the model.
  @transient private var batch = 0
  @transient private var steps = 0
  @transient private var inputT: Array[Float] = _ // (time, batch, input)
  @transient private var gates: Array[Float] = _ // (time, batch, 4H) activated gates
  @transient private var cells: Array[Float] = _ // (time + 1, batch, H), cells(0) = 0
  @transient private var hiddens: Array[Float] = _ // (time + 1, batch, H), hiddens(0) = 0
  @transient private var cellTanh: Array[Float] = _ // (time, batch, H)
  @transient private var gradGates: Array[Float] = _ // (time, batch, 4H) gradients of the gates' pre-activations
  @transient private var gradInputT: Array[Float] = _ // (time, batch, input)
  @transient private var exps: Array[Float] = _ // (batch, 4H)
  @transient private var gradHidden: Array[Float] = _ // (batch, H)
  @transient private var gradCell: Array[Float] = _ // (batch, H)
  @transient private var ones: Array[Float] = _ // (time * batch)

  reset()

  override def reset(): Unit = {
    val inputBound = 1.0 / math.sqrt(inputSize)
    weight.rand(-inputBound, inputBound)
    bias.rand(-inputBound, inputBound)
    val hiddenBound = 1.0 / math.sqrt(hiddenSize)
    recurrentWeight.rand(-hiddenBound, hiddenBound)
    zeroGradParameters()
  }

  override def parameters(): (Array[Tensor[D]], Array[Tensor[D]]) =
    (Array(weight, bias, recurrentWeight), Array(gradWeight, gradBias, gradRecurrentWeight))

  override def getParametersTable(): Table =
    T(getName() -> T("weight" -> weight, "bias" -> bias, "recurrentWeight" -> recurrentWeight,
      "gradWeight" -> gradWeight, "gradBias" -> gradBias, "gradRecurrentWeight" -> gradRecurrentWeight))

  override def updateOutput(input: Tensor[D]): Tensor[D] = {
    require(input.dim() == 3 && input.size(3) == inputSize,
      s"FusedLSTM: input must be (batch, time, $inputSize), got (${input.size().mkString(", ")})")
    val x = input.contiguous()
    allocate(x.size(1), x.size(2))
    val (n, h, g4) = (batch, hiddenSize, gateWidth)
    FusedLSTM.transpose(data(x), offset(x), n, steps, inputSize, inputT, 0)
    FusedLSTM.gemm(false, true, steps * n, g4, inputSize, 1f, inputT, 0, inputSize,
      data(weight), offset(weight), inputSize, 0f, gates, 0, g4)
    java.util.Arrays.fill(hiddens, 0, n * h, 0f)
    java.util.Arrays.fill(cells, 0, n * h, 0f)
    var t = 0
    while (t < steps) {
      if (t > 0) {
        FusedLSTM.gemm(false, true, n, g4, h, 1f, hiddens, t * n * h, h,
          data(recurrentWeight), offset(recurrentWeight), h, 1f, gates, t * n * g4, g4)
      }
      cellForward(t)
      t += 1
    }
    if (returnSequences) {
      output.resize(n, steps, h)
      FusedLSTM.transpose(hiddens, n * h, steps, n, h, data(output), offset(output))
    } else {
      output.resize(n, h)
      System.arraycopy(hiddens, steps * n * h, data(output), offset(output), n * h)
    }
    output
  }

  /** Gates and cell of step t: gates(t) holds the pre-activations (less the bias) on entry. */
  private def cellForward(t: Int): Unit = {
    val (n, h, g4) = (batch, hiddenSize, gateWidth)
    val b = data(bias)
    val bo = offset(bias)
    val gateBase = t * n * g4
    // exp(-x) for the sigmoid gates, exp(-2x) for the tanh candidate: one vector exp per step. An overflow to
    // +Inf gives the right limits below (0 for a sigmoid, -1 for tanh).
    var r = 0
    while (r < n) {
      val go = gateBase + r * g4
      val eo = r * g4
      var j = 0
      while (j < h) {
        exps(eo + j) = -(gates(go + j) + b(bo + j))
        j += 1
      }
      j = h
      while (j < 2 * h) {
        exps(eo + j) = -2f * (gates(go + j) + b(bo + j))
        j += 1
      }
      j = 2 * h
      while (j < g4) {
        exps(eo + j) = -(gates(go + j) + b(bo + j))
        j += 1
      }
      r += 1
    }
    FusedLSTM.exp(exps, n * g4)
    val prevBase = t * n * h
    val nextBase = prevBase + n * h
    r = 0
    while (r < n) {
      val go = gateBase + r * g4
      val eo = r * g4
      val ho = r * h
      var j = 0
      while (j < h) {
        val in = 1f / (1f + exps(eo + j))
        val candidate = 2f / (1f + exps(eo + h + j)) - 1f
        val forget = 1f / (1f + exps(eo + 2 * h + j))
        gates(go + j) = in
        gates(go + h + j) = candidate
        gates(go + 2 * h + j) = forget
        gates(go + 3 * h + j) = 1f / (1f + exps(eo + 3 * h + j))
        exps(eo + j) = in * candidate + forget * cells(prevBase + ho + j)
        j += 1
      }
      System.arraycopy(exps, eo, cells, nextBase + ho, h)
      r += 1
    }
    FusedLSTM.tanh(cells, nextBase, cellTanh, prevBase, n * h)
    r = 0
    while (r < n) {
      val go = gateBase + r * g4 + 3 * h
      val ho = prevBase + r * h
      val hn = nextBase + r * h
      var j = 0
      while (j < h) {
        hiddens(hn + j) = gates(go + j) * cellTanh(ho + j)
        j += 1
      }
      r += 1
    }
  }

  override def updateGradInput(input: Tensor[D], gradOutput: Tensor[D]): Tensor[D] = {
    val (n, h, g4) = (batch, hiddenSize, gateWidth)
    require(input.dim() == 3 && input.size(1) == n && input.size(2) == steps,
      "FusedLSTM: backward must follow a forward pass on the same input")
    val expected = if (returnSequences) Array(n, steps, h) else Array(n, h)
    require(gradOutput.size().sameElements(expected),
      s"FusedLSTM: gradOutput must be (${expected.mkString(", ")}), got (${gradOutput.size().mkString(", ")})")
    val gy = gradOutput.contiguous()
    val gyData = data(gy)
    val gyOffset = offset(gy)
    java.util.Arrays.fill(gradHidden, 0, n * h, 0f)
    java.util.Arrays.fill(gradCell, 0, n * h, 0f)
    var t = steps - 1
    while (t >= 0) {
      if (returnSequences) {
        var r = 0
        while (r < n) {
          val src = gyOffset + (r * steps + t) * h
          var j = 0
          while (j < h) {
            gradHidden(r * h + j) += gyData(src + j)
            j += 1
          }
          r += 1
        }
      } else if (t == steps - 1) {
        var k = 0
        while (k < n * h) {
          gradHidden(k) += gyData(gyOffset + k)
          k += 1
        }
      }
      cellBackward(t)
      if (t > 0) {
        FusedLSTM.gemm(false, false, n, h, g4, 1f, gradGates, t * n * g4, g4,
          data(recurrentWeight), offset(recurrentWeight), h, 0f, gradHidden, 0, h)
      }
      t -= 1
    }
    FusedLSTM.gemm(false, false, steps * n, inputSize, g4, 1f, gradGates, 0, g4,
      data(weight), offset(weight), inputSize, 0f, gradInputT, 0, inputSize)
    gradInput.resize(n, steps, inputSize)
    FusedLSTM.transpose(gradInputT, 0, steps, n, inputSize, data(gradInput), offset(gradInput))
    gradInput
  }

  /** Gradients of step t's gate pre-activations from gradHidden and gradCell; gradCell moves to step t - 1. */
  private def cellBackward(t: Int): Unit = {
    val (n, h, g4) = (batch, hiddenSize, gateWidth)
    val gateBase = t * n * g4
    val stateBase = t * n * h
    var r = 0
    while (r < n) {
      val go = gateBase + r * g4
      val ho = r * h
      var j = 0
      while (j < h) {
        val in = gates(go + j)
        val candidate = gates(go + h + j)
        val forget = gates(go + 2 * h + j)
        val out = gates(go + 3 * h + j)
        val tanhCell = cellTanh(stateBase + ho + j)
        val dh = gradHidden(ho + j)
        val dc = dh * out * (1f - tanhCell * tanhCell) + gradCell(ho + j)
        gradGates(go + j) = dc * candidate * in * (1f - in)
        gradGates(go + h + j) = dc * in * (1f - candidate * candidate)
        gradGates(go + 2 * h + j) = dc * cells(stateBase + ho + j) * forget * (1f - forget)
        gradGates(go + 3 * h + j) = dh * tanhCell * out * (1f - out)
        gradCell(ho + j) = dc * forget
        j += 1
      }
      r += 1
    }
  }

  override def accGradParameters(input: Tensor[D], gradOutput: Tensor[D]): Unit = {
    val (n, h, g4) = (batch, hiddenSize, gateWidth)
    val rows = steps * n
    val scaleWeight = scaleW.toFloat
    val scaleBias = scaleB.toFloat
    if (scaleWeight != 0f) {
      FusedLSTM.gemm(true, false, g4, inputSize, rows, scaleWeight, gradGates, 0, g4, inputT, 0, inputSize,
        1f, data(gradWeight), offset(gradWeight), inputSize)
      if (steps > 1) {
        // Step t's recurrent term used hiddens(t); step 0's is zero.
        FusedLSTM.gemm(true, false, g4, h, rows - n, scaleWeight, gradGates, n * g4, g4, hiddens, n * h, h,
          1f, data(gradRecurrentWeight), offset(gradRecurrentWeight), h)
      }
    }
    if (scaleBias != 0f) {
      FusedLSTM.columnSums(gradGates, rows, g4, scaleBias, ones, data(gradBias), offset(gradBias))
    }
  }

  override def clearState(): this.type = {
    super.clearState()
    batch = 0
    steps = 0
    inputT = null
    gates = null
    cells = null
    hiddens = null
    cellTanh = null
    gradGates = null
    gradInputT = null
    exps = null
    gradHidden = null
    gradCell = null
    ones = null
    this
  }

  override def toString: String = s"FusedLSTM($inputSize, $hiddenSize, returnSequences = $returnSequences)"

  private def allocate(n: Int, t: Int): Unit = {
    val h = hiddenSize
    batch = n
    steps = t
    inputT = FusedLSTM.atLeast(inputT, t * n * inputSize)
    gates = FusedLSTM.atLeast(gates, t * n * gateWidth)
    cells = FusedLSTM.atLeast(cells, (t + 1) * n * h)
    hiddens = FusedLSTM.atLeast(hiddens, (t + 1) * n * h)
    cellTanh = FusedLSTM.atLeast(cellTanh, t * n * h)
    gradGates = FusedLSTM.atLeast(gradGates, t * n * gateWidth)
    gradInputT = FusedLSTM.atLeast(gradInputT, t * n * inputSize)
    exps = FusedLSTM.atLeast(exps, n * gateWidth)
    gradHidden = FusedLSTM.atLeast(gradHidden, n * h)
    gradCell = FusedLSTM.atLeast(gradCell, n * h)
    if (ones == null || ones.length < t * n) {
      ones = Array.fill(t * n)(1f)
    }
  }

  private def data(tensor: Tensor[D]): Array[Float] = {
    require(tensor.isContiguous(), "FusedLSTM: tensors must be contiguous")
    tensor.storage().array().asInstanceOf[Array[Float]]
  }

  private def offset(tensor: Tensor[D]): Int = tensor.storageOffset() - 1
}

object FusedLSTM {
  def apply[D: ClassTag](inputSize: Int, hiddenSize: Int, returnSequences: Boolean = false)
    (implicit ev: TensorNumeric[D]): FusedLSTM[D] = new FusedLSTM[D](inputSize, hiddenSize, returnSequences)

  /** For Python (through the JVM gateway): a float layer. */
  def create(inputSize: Int, hiddenSize: Int, returnSequences: Boolean): FusedLSTM[Float] =
    new FusedLSTM[Float](inputSize, hiddenSize, returnSequences)

  private def atLeast(buffer: Array[Float], size: Int): Array[Float] =
    if (buffer != null && buffer.length >= size) buffer else new Array[Float](size)

  /** (a, b, c) -> (b, a, c), row-major. */
  private def transpose(src: Array[Float], srcOffset: Int, a: Int, b: Int, c: Int,
    dst: Array[Float], dstOffset: Int): Unit = {
    var i = 0
    while (i < a) {
      var j = 0
      while (j < b) {
        System.arraycopy(src, srcOffset + (i * b + j) * c, dst, dstOffset + (j * a + i) * c, c)
        j += 1
      }
      i += 1
    }
  }

  /** Row-major C (m x n) = alpha op(A) op(B) + beta C, on MKL's column-major SGEMM. */
  private def gemm(transA: Boolean, transB: Boolean, m: Int, n: Int, k: Int, alpha: Float,
    a: Array[Float], aOffset: Int, lda: Int, b: Array[Float], bOffset: Int, ldb: Int,
    beta: Float, c: Array[Float], cOffset: Int, ldc: Int): Unit = {
    requireMkl()
    com.intel.analytics.bigdl.mkl.MKL.vsgemm(if (transB) 't' else 'n', if (transA) 't' else 'n',
      n, m, k, alpha, b, bOffset, ldb, a, aOffset, lda, beta, c, cOffset, ldc)
  }

  /** out(j) += alpha * sum of column j of the row-major matrix a (rows x cols). */
  private def columnSums(a: Array[Float], rows: Int, cols: Int, alpha: Float, ones: Array[Float],
    out: Array[Float], outOffset: Int): Unit = {
    requireMkl()
    com.intel.analytics.bigdl.mkl.MKL.vsgemv('n', cols, rows, alpha, a, 0, cols, ones, 0, 1, 1f, out, outOffset, 1)
  }

  private def exp(values: Array[Float], n: Int): Unit = {
    requireMkl()
    com.intel.analytics.bigdl.mkl.MKL.vsExp(n, values, 0, values, 0)
  }

  private def tanh(src: Array[Float], srcOffset: Int, dst: Array[Float], dstOffset: Int, n: Int): Unit = {
    requireMkl()
    com.intel.analytics.bigdl.mkl.MKL.vsTanh(n, src, srcOffset, dst, dstOffset)
  }

  private def requireMkl(): Unit =
    require(com.intel.analytics.bigdl.mkl.MKL.isMKLLoaded,
      "FusedLSTM needs BigDL's MKL library (initialise BigDL's engine first)")
}
