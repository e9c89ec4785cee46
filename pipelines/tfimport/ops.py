"""Which TensorFlow op types BigDL 2.4's TensorFlow loader can build, and hints for those it cannot.

BigDL builds a node of op type X with the class `com.intel.analytics.bigdl.dllib.utils.tf.loaders.X`
(after trying its multi-node patterns, which only use op types listed here too). `LOADABLE_OPS` is the
list of those classes in `bigdl-dllib-spark3==2.4.0`'s jar; `jar_loader_ops()` re-reads it from the jar.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable

LOADER_PACKAGE = "com/intel/analytics/bigdl/dllib/utils/tf/loaders/"
# Classes in the loaders package that are helpers, not op loaders.
_HELPERS = {"Adapter", "Utils", "TensorflowOpsLoader", "DependencyNode"}

LOADABLE_OPS = frozenset(
    """
Abs Add AddN All Any ApproximateEqual ArgMax Assert AvgPool AvgPoolGrad BatchMatMul BiasAdd BiasAddGrad
BiasAddV1 BroadcastGradientArgs Cast Ceil ConcatOffset ConcatV2 Const ControlTrigger Conv2D
Conv2DBackpropFilter Conv2DBackpropInput Conv3D Conv3DBackpropFilter Conv3DBackpropFilterV2 Conv3DBackpropInput
Conv3DBackpropInputV2 DecodeBmp DecodeGif DecodeJpeg DecodePng DecodeRaw DepthwiseConv2dNative
DepthwiseConv2dNativeBackpropFilter DepthwiseConv2dNativeBackpropInput Digamma Dilation2D Dilation2DBackpropFilter
Dilation2DBackpropInput Div Elu EluGrad Enter Equal Erf Erfc Exit Exp ExpandDims Expm1 Fill Floor FloorDiv
FloorMod FusedBatchNorm FusedBatchNormGrad FusedBatchNormGradV2 FusedBatchNormV2 Gather Greater GreaterEqual
Identity InTopK Inv InvGrad InvertPermutation IsFinite IsInf IsNan L2Loss LRN LRNGrad Less LessEqual Lgamma Log
Log1p LogSoftmax LogicalAnd LogicalNot LogicalOr LoopCond MatMul Max MaxPool MaxPoolGrad Maximum Mean Merge
Minimum Mod Mul Neg NextIteration NoOp NotEqual OneHot Pack Pad ParseExample ParseSingleExample Placeholder Pow
Prod QueueDequeueManyV2 QueueDequeueV2 QueueEnqueueManyV2 QueueEnqueueV2 RandomShuffle RandomUniform Range Rank
ReaderReadV2 RealDiv Reciprocal ReciprocalGrad RefEnter Relu Relu6 Relu6Grad ReluGrad Reshape ResizeBilinear
ResizeBilinearGrad Rint Round Rsqrt RsqrtGrad SegmentSum Select Shape Sigmoid SigmoidGrad Sign Slice Softmax
SoftmaxCrossEntropyWithLogits Softplus SoftplusGrad Softsign SoftsignGrad Split Sqrt SqrtGrad Square
SquaredDifference Squeeze Stack StackPop StackPopV2 StackPush StackPushV2 StackV2 StridedSlice Sub Substr Sum
Switch Tanh TanhGrad TensorArrayConcatV3 TensorArrayGatherV3 TensorArrayGradV3 TensorArrayReadV3
TensorArrayScatterV3 TensorArraySizeV3 TensorArraySplitV3 TensorArrayV3 TensorArrayWriteV3 Tile TopK TopKV2
Transpose TruncateDiv TruncateMod Unpack VariableV2
""".split()
)

# What to do about the TF2-era ops met most often; `rewrite.rewrite_for_bigdl` handles some of them itself.
HINTS = {
    "AddV2": "rewritten to Add automatically",
    "ReadVariableOp": "resource variable: rewritten to a constant or VariableV2 when its value is known",
    "VarHandleOp": "resource variable: rewritten to a constant or VariableV2 when its value is known",
    "FusedBatchNormV3": "rewritten to FusedBatchNormV2 when is_training is false and reserve_space_3 is unused",
    "StatelessWhile": "a tf.while_loop (e.g. a Keras RNN without unroll=True): rebuild the RNN with unroll=True",
    "While": "a tf.while_loop (e.g. a Keras RNN without unroll=True): rebuild the RNN with unroll=True",
    "PartitionedCall": "a function call: freeze with convert_variables_to_constants_v2, which inlines functions",
    "StatefulPartitionedCall": "a function call: freeze with convert_variables_to_constants_v2, which inlines functions",
    "TensorListReserve": "TF2 control-flow state of a loop: unroll the loop (Keras RNN unroll=True)",
    "TensorListFromTensor": "TF2 control-flow state of a loop: unroll the loop (Keras RNN unroll=True)",
    "TensorListGetItem": "TF2 control-flow state of a loop: unroll the loop (Keras RNN unroll=True)",
    "TensorListSetItem": "TF2 control-flow state of a loop: unroll the loop (Keras RNN unroll=True)",
    "TensorListStack": "TF2 control-flow state of a loop: unroll the loop (Keras RNN unroll=True)",
    "Min": "no BigDL loader: express as -Max(-x)",
}


def is_loadable(op: str) -> bool:
    return op in LOADABLE_OPS


def unsupported(ops: Iterable[str]) -> set[str]:
    return {op for op in ops if op not in LOADABLE_OPS}


def hint_for(ops: Iterable[str]) -> str:
    """One line per op type that has a known remedy."""
    return "\n".join(f"  {op}: {HINTS[op]}" for op in sorted(set(ops)) if op in HINTS)


def jar_loader_ops(jar_path: str) -> set[str]:
    """Op types with a loader class in a BigDL dllib jar (reads the jar's listing; no JVM)."""
    pattern = re.compile(re.escape(LOADER_PACKAGE) + r"([A-Za-z0-9]+)\.class$")
    with zipfile.ZipFile(jar_path) as jar:
        names = {m.group(1) for m in map(pattern.match, jar.namelist()) if m}
    return {n for n in names if n not in _HELPERS and not n.endswith("LoadTF")}
