package pipelines.nn

import com.intel.analytics.bigdl.dllib.nn.abstractnn.TensorModule
import com.intel.analytics.bigdl.dllib.tensor.Tensor
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric
import com.intel.analytics.bigdl.dllib.utils.{T, Table}

import scala.reflect.ClassTag

/**
 * An LSTM layer that runs a whole sequence as one module: (batch, time, inputSize) in, and out either the
 * hidden state of every step (batch, time, hiddenSize) or, with `returnSequences = false`, of the last
 * step only (batch, hiddenSize). With `withGradInput = false` (the first layer of a model, whose input is data)
 * the backward pass skips the gradient with respect to the input and leaves `gradInput` empty.
 *
 * The same cell as BigDL's `Recurrent().add(LSTM(inputSize, hiddenSize))`, with its parameters in the same
 * order and shapes: input-to-gates weight (4H x inputSize), gate bias (4H), hidden-to-gates weight (4H x H),
 * gates in the order input, cell candidate, forget, output. Initial hidden and cell states are zero.
 *
 * The input projection of all steps is one GEMM, each step one GEMM for the recurrent term, one vector exp
 * and one pass over contiguous buffers for the gates and the cell; backpropagation through time has the same
 * structure, and the weight gradients are one GEMM each over all steps. Float only (the precision BigDL's
 * Python API trains in).
 */
@SerialVersionUID(1L)
class FusedLSTM[D: ClassTag](
  val inputSize: Int,
  val hiddenSize: Int,
  val returnSequences: Boolean = false,
  val withGradInput: Boolean = true
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

  // Work buffers, rebuilt after deserialisation rather than shipped with the model. Per-step state lives in
  // arrays of its own (batch x H, row-major), so that the element-wise loops index every array alike and
  // the JIT vectorises them.
  @transient private var batch = 0
  @transient private var steps = 0
  @transient private var scratch: Scratch = _

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
    val s = scratch
    val (n, h, g4) = (batch, hiddenSize, gateWidth)
    val nh = n * h
    s.scaleWeights(data(weight), offset(weight), data(recurrentWeight), offset(recurrentWeight),
      data(bias), offset(bias))
    // exps(t) = -([x 1] [W b]' + h U') per gate, doubled for the candidate (weights scaled in scaleWeights).
    val width = inputSize + 1
    FusedLSTM.transpose(data(x), offset(x), n, steps, inputSize, width, s.inputT, 0)
    FusedLSTM.gemm(false, true, steps * n, g4, width, 1f, s.inputT, 0, width,
      s.scaledWeight, 0, width, 0f, s.exps, 0, g4)
    java.util.Arrays.fill(s.hiddens, 0, nh, 0f)
    java.util.Arrays.fill(s.cells(0), 0f)
    var t = 0
    while (t < steps) {
      if (t > 0) {
        FusedLSTM.gemm(false, true, n, g4, h, 1f, s.hiddens, t * nh, h,
          s.scaledRecurrentWeight, 0, h, 1f, s.exps, t * n * g4, g4)
      }
      cellForward(t)
      t += 1
    }
    if (returnSequences) {
      output.resize(n, steps, h)
      FusedLSTM.transpose(s.hiddens, nh, steps, n, h, h, data(output), offset(output))
    } else {
      output.resize(n, h)
      System.arraycopy(s.hiddens, steps * nh, data(output), offset(output), nh)
    }
    output
  }

  /** Step t: exps(t) holds the negated (candidate: doubled) pre-activations on entry. */
  private def cellForward(t: Int): Unit = {
    val s = scratch
    val (n, h, g4) = (batch, hiddenSize, gateWidth)
    val nh = n * h
    // An overflow to +Inf gives the right limits below (0 for a sigmoid, -1 for tanh).
    FusedLSTM.exp(s.exps, t * n * g4, n * g4)
    val (eIn, eCandidate, eForget, eOut) = (s.split(0), s.split(1), s.split(2), s.split(3))
    FusedLSTM.splitGates(s.exps, t * n * g4, n, h, s.split)
    val slot = s.slot(t)
    val in = s.gates(4 * slot)
    val candidate = s.gates(4 * slot + 1)
    val forget = s.gates(4 * slot + 2)
    val out = s.gates(4 * slot + 3)
    val cellPrev = s.cells(s.cellSlot(t))
    val cell = s.cells(s.cellSlot(t + 1))
    var k = 0
    while (k < nh) {
      val i = 1f / (1f + eIn(k))
      val g = 2f / (1f + eCandidate(k)) - 1f // tanh(x) = 2 sigmoid(2x) - 1
      val f = 1f / (1f + eForget(k))
      in(k) = i
      candidate(k) = g
      forget(k) = f
      out(k) = 1f / (1f + eOut(k))
      cell(k) = i * g + f * cellPrev(k)
      k += 1
    }
    val cellTanh = s.cellTanh(slot)
    val hidden = s.newHidden
    k = 0
    while (k < nh) {
      hidden(k) = -2f * cell(k)
      k += 1
    }
    FusedLSTM.exp(hidden, 0, nh)
    k = 0
    while (k < nh) {
      val tc = 2f / (1f + hidden(k)) - 1f
      cellTanh(k) = tc
      hidden(k) = out(k) * tc
      k += 1
    }
    System.arraycopy(hidden, 0, s.hiddens, (t + 1) * nh, nh)
  }

  override def updateGradInput(input: Tensor[D], gradOutput: Tensor[D]): Tensor[D] = {
    val s = scratch
    val (n, h, g4) = (batch, hiddenSize, gateWidth)
    val nh = n * h
    require(s != null && input.dim() == 3 && input.size(1) == n && input.size(2) == steps,
      "FusedLSTM: backward must follow a forward pass on the same input")
    require(s.history, "FusedLSTM: backward must follow a forward pass in training mode")
    val expected = if (returnSequences) Array(n, steps, h) else Array(n, h)
    require(gradOutput.size().sameElements(expected),
      s"FusedLSTM: gradOutput must be (${expected.mkString(", ")}), got (${gradOutput.size().mkString(", ")})")
    val gy = gradOutput.contiguous()
    val gyData = data(gy)
    val gyOffset = offset(gy)
    java.util.Arrays.fill(s.gradHidden, 0f)
    java.util.Arrays.fill(s.gradCell, 0f)
    var t = steps - 1
    while (t >= 0) {
      if (returnSequences) {
        var r = 0
        while (r < n) {
          FusedLSTM.addTo(gyData, gyOffset + (r * steps + t) * h, s.gradHidden, r * h, h)
          r += 1
        }
      } else if (t == steps - 1) {
        FusedLSTM.addTo(gyData, gyOffset, s.gradHidden, 0, nh)
      }
      cellBackward(t)
      if (t > 0) {
        FusedLSTM.gemm(false, false, n, h, g4, 1f, s.gradGates, t * n * g4, g4,
          data(recurrentWeight), offset(recurrentWeight), h, 0f, s.gradHidden, 0, h)
      }
      t -= 1
    }
    if (withGradInput) {
      FusedLSTM.gemm(false, false, steps * n, inputSize, g4, 1f, s.gradGates, 0, g4,
        data(weight), offset(weight), inputSize, 0f, s.gradInputT, 0, inputSize)
      gradInput.resize(n, steps, inputSize)
      FusedLSTM.transpose(s.gradInputT, 0, steps, n, inputSize, inputSize, data(gradInput), offset(gradInput))
    } else {
      gradInput.set()
    }
    gradInput
  }

  /** Gradients of step t's gate pre-activations from gradHidden and gradCell; gradCell moves to step t - 1. */
  private def cellBackward(t: Int): Unit = {
    val s = scratch
    val nh = batch * hiddenSize
    val in = s.gates(4 * t)
    val candidate = s.gates(4 * t + 1)
    val forget = s.gates(4 * t + 2)
    val out = s.gates(4 * t + 3)
    val cellTanh = s.cellTanh(t)
    val cellPrev = s.cells(t)
    val (dIn, dCandidate, dForget, dOut) = (s.split(0), s.split(1), s.split(2), s.split(3))
    val dh = s.gradHidden
    val dc = s.gradCell
    var k = 0
    while (k < nh) {
      val o = out(k)
      val tc = cellTanh(k)
      val i = in(k)
      val g = candidate(k)
      val f = forget(k)
      val dcell = dh(k) * o * (1f - tc * tc) + dc(k)
      dOut(k) = dh(k) * tc * o * (1f - o)
      dIn(k) = dcell * g * i * (1f - i)
      dCandidate(k) = dcell * i * (1f - g * g)
      dForget(k) = dcell * cellPrev(k) * f * (1f - f)
      dc(k) = dcell * f
      k += 1
    }
    FusedLSTM.joinGates(s.split, batch, hiddenSize, s.gradGates, t * batch * gateWidth)
  }

  override def accGradParameters(input: Tensor[D], gradOutput: Tensor[D]): Unit = {
    val s = scratch
    val (n, h, g4) = (batch, hiddenSize, gateWidth)
    val rows = steps * n
    val scaleWeight = scaleW.toFloat
    val scaleBias = scaleB.toFloat
    if (scaleWeight != 0f) {
      FusedLSTM.gemm(true, false, g4, inputSize, rows, scaleWeight, s.gradGates, 0, g4, s.inputT, 0, inputSize + 1,
        1f, data(gradWeight), offset(gradWeight), inputSize)
      if (steps > 1) {
        // Step t's recurrent term used hiddens(t); step 0's is zero.
        FusedLSTM.gemm(true, false, g4, h, rows - n, scaleWeight, s.gradGates, n * g4, g4, s.hiddens, n * h, h,
          1f, data(gradRecurrentWeight), offset(gradRecurrentWeight), h)
      }
    }
    if (scaleBias != 0f) {
      FusedLSTM.columnSums(s.gradGates, rows, g4, scaleBias, s.ones, data(gradBias), offset(gradBias))
    }
  }

  override def clearState(): this.type = {
    super.clearState()
    batch = 0
    steps = 0
    scratch = null
    this
  }

  override def toString: String =
    s"FusedLSTM($inputSize, $hiddenSize, returnSequences = $returnSequences, withGradInput = $withGradInput)"

  private def allocate(n: Int, t: Int): Unit = {
    val history = isTraining()
    if (scratch == null || !scratch.fits(n, t, history)) scratch = new Scratch(n, t, inputSize, hiddenSize, history)
    batch = n
    steps = t
  }

  private def data(tensor: Tensor[D]): Array[Float] = {
    require(tensor.isContiguous(), "FusedLSTM: tensors must be contiguous")
    tensor.storage().array().asInstanceOf[Array[Float]]
  }

  private def offset(tensor: Tensor[D]): Int = tensor.storageOffset() - 1
}

/**
 * The work buffers of one FusedLSTM for batches of up to `n` sequences of up to `t` steps. With `history` (training)
 * every step's gates and cell are kept for backpropagation; without it (inference) one step's, and no gradient
 * buffers: a fraction of the memory, and what is written stays in the cache.
 */
private class Scratch(val n: Int, val t: Int, inputSize: Int, hiddenSize: Int, val history: Boolean) {
  private val h = hiddenSize
  private val g4 = 4 * hiddenSize
  private val kept = if (history) t else 1
  def fits(batch: Int, steps: Int, training: Boolean): Boolean = batch <= n && steps <= t && (history || !training)
  def slot(step: Int): Int = if (history) step else 0 // where step's gates and tanh(c) are
  def cellSlot(step: Int): Int = if (history) step else step % 2 // where the cell state after `step` steps is

  // [W b] and U negated, and doubled for the candidate gate, so that the GEMMs give exp's arguments.
  val scaledWeight = new Array[Float](g4 * (inputSize + 1))
  val scaledRecurrentWeight = new Array[Float](g4 * h)
  val inputT: Array[Float] = { // (time, batch, input + 1), the last column ones
    val buffer = new Array[Float](t * n * (inputSize + 1))
    var row = 0
    while (row < t * n) {
      buffer(row * (inputSize + 1) + inputSize) = 1f
      row += 1
    }
    buffer
  }
  val exps = new Array[Float](t * n * g4) // (time, batch, 4H)
  val split: Array[Array[Float]] = Array.fill(4)(new Array[Float](n * h)) // one gate of one step each
  val gates: Array[Array[Float]] = Array.fill(4 * kept)(new Array[Float](n * h)) // gate q of slot s at 4s + q
  val cells: Array[Array[Float]] = Array.fill(if (history) t + 1 else 2)(new Array[Float](n * h)) // cells(0) = 0
  val cellTanh: Array[Array[Float]] = Array.fill(kept)(new Array[Float](n * h))
  val hiddens = new Array[Float]((t + 1) * n * h) // (time + 1, batch, H), hiddens(0) = 0
  val newHidden = new Array[Float](n * h)
  lazy val gradGates = new Array[Float](t * n * g4) // (time, batch, 4H) gradients of the pre-activations
  lazy val gradInputT = new Array[Float](t * n * inputSize)
  lazy val gradHidden = new Array[Float](n * h)
  lazy val gradCell = new Array[Float](n * h)
  lazy val ones: Array[Float] = Array.fill(t * n)(1f)

  def scaleWeights(w: Array[Float], wOffset: Int, u: Array[Float], uOffset: Int, b: Array[Float],
    bOffset: Int): Unit = {
    var row = 0
    while (row < g4) {
      val scale = if (row >= h && row < 2 * h) -2f else -1f
      FusedLSTM.scaled(w, wOffset + row * inputSize, scale, scaledWeight, row * (inputSize + 1), inputSize)
      scaledWeight(row * (inputSize + 1) + inputSize) = scale * b(bOffset + row)
      FusedLSTM.scaled(u, uOffset + row * h, scale, scaledRecurrentWeight, row * h, h)
      row += 1
    }
  }
}

object FusedLSTM {
  def apply[D: ClassTag](inputSize: Int, hiddenSize: Int, returnSequences: Boolean = false,
    withGradInput: Boolean = true)(implicit ev: TensorNumeric[D]): FusedLSTM[D] =
    new FusedLSTM[D](inputSize, hiddenSize, returnSequences, withGradInput)

  /** For Python (through the JVM gateway): a float layer. */
  def create(inputSize: Int, hiddenSize: Int, returnSequences: Boolean, withGradInput: Boolean): FusedLSTM[Float] =
    new FusedLSTM[Float](inputSize, hiddenSize, returnSequences, withGradInput)

  /** (a, b, c) -> (b, a, c), row-major; the destination's rows of `c` values are `stride` apart. */
  private[nn] def transpose(src: Array[Float], srcOffset: Int, a: Int, b: Int, c: Int, stride: Int,
    dst: Array[Float], dstOffset: Int): Unit = {
    var i = 0
    while (i < a) {
      var j = 0
      while (j < b) {
        System.arraycopy(src, srcOffset + (i * b + j) * c, dst, dstOffset + (j * a + i) * stride, c)
        j += 1
      }
      i += 1
    }
  }

  /** The four H-wide gate blocks of each row of src (n rows of 4H from srcOffset) into gates(0..3) (n x H). */
  private[nn] def splitGates(src: Array[Float], srcOffset: Int, n: Int, h: Int, gates: Array[Array[Float]]): Unit = {
    var r = 0
    while (r < n) {
      var q = 0
      while (q < 4) {
        System.arraycopy(src, srcOffset + (4 * r + q) * h, gates(q), r * h, h)
        q += 1
      }
      r += 1
    }
  }

  /** The inverse of splitGates. */
  private[nn] def joinGates(gates: Array[Array[Float]], n: Int, h: Int, dst: Array[Float], dstOffset: Int): Unit = {
    var r = 0
    while (r < n) {
      var q = 0
      while (q < 4) {
        System.arraycopy(gates(q), r * h, dst, dstOffset + (4 * r + q) * h, h)
        q += 1
      }
      r += 1
    }
  }

  private[nn] def scaled(src: Array[Float], srcOffset: Int, scale: Float, dst: Array[Float], dstOffset: Int,
    n: Int): Unit = {
    var j = 0
    while (j < n) {
      dst(dstOffset + j) = scale * src(srcOffset + j)
      j += 1
    }
  }

  private[nn] def addTo(src: Array[Float], srcOffset: Int, dst: Array[Float], dstOffset: Int, n: Int): Unit = {
    var j = 0
    while (j < n) {
      dst(dstOffset + j) += src(srcOffset + j)
      j += 1
    }
  }

  /** Row-major C (m x n) = alpha op(A) op(B) + beta C, on MKL's column-major SGEMM. */
  private[nn] def gemm(transA: Boolean, transB: Boolean, m: Int, n: Int, k: Int, alpha: Float,
    a: Array[Float], aOffset: Int, lda: Int, b: Array[Float], bOffset: Int, ldb: Int,
    beta: Float, c: Array[Float], cOffset: Int, ldc: Int): Unit = {
    requireMkl()
    com.intel.analytics.bigdl.mkl.MKL.vsgemm(if (transB) 't' else 'n', if (transA) 't' else 'n',
      n, m, k, alpha, b, bOffset, ldb, a, aOffset, lda, beta, c, cOffset, ldc)
  }

  /** out(j) += alpha * sum of column j of the row-major matrix a (rows x cols). */
  private[nn] def columnSums(a: Array[Float], rows: Int, cols: Int, alpha: Float, ones: Array[Float],
    out: Array[Float], outOffset: Int): Unit = {
    requireMkl()
    com.intel.analytics.bigdl.mkl.MKL.vsgemv('n', cols, rows, alpha, a, 0, cols, ones, 0, 1, 1f, out, outOffset, 1)
  }

  private[nn] def exp(values: Array[Float], offset: Int, n: Int): Unit = {
    requireMkl()
    com.intel.analytics.bigdl.mkl.MKL.vsExp(n, values, offset, values, offset)
  }

  private def requireMkl(): Unit =
    require(com.intel.analytics.bigdl.mkl.MKL.isMKLLoaded,
      "FusedLSTM needs BigDL's MKL library (initialise BigDL's engine first)")
}
