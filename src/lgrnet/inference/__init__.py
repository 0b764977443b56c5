"""The inference core: one clip through the model and a video of any length through the predictor.

- :mod:`.predictor`: :class:`VideoPredictor` (reads -> runs -> stitches), the API over the model;
- :mod:`.windows`: the window plan, made as data before anything runs; :mod:`.memory`: the budget
  that sizes it;
- :mod:`.clip`: frames -> model input, one forward pass; :mod:`.clip_runner`: one clip eager,
  compiled or as a CUDA graph (:mod:`.cuda_graphs`), at a precision;
- :mod:`.postprocess`: the chosen query, masks, probability maps and per-frame scores;
- :mod:`.pipeline`: the reader thread, writer pool and stage clock;
- :mod:`.loading`: weights -> a model in eval mode at its recorded input size; :mod:`.device`.
"""
