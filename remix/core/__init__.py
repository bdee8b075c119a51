"""The Re-Mix core: action preprocessing, the discrete policy, reference training with automatic
early stopping, Group DRO over the excess loss, subsetting, and the `remix-weights` / `remix-subset`
apps built on them."""
