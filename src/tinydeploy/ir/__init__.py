from .graph import Graph, Node, Quant, Tensor

__all__ = ["Graph", "Node", "Quant", "Tensor"]
