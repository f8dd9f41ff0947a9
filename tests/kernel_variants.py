"""The optimised kernel variants the tests know, by kernel: `tt_<kind>_s8` has the variants
listed (tt_<kind>_s8_dsp / _mve). tests/test_kernels_simd.py (the FC backward
ones: tests/fc_backward_cases.py; the weight-gradient / update ones:
test_kernels_update_simd.py; add: test_kernels_add_simd.py on tests/add_cases.py) tests each one against its
reference; tests/test_kernel_selection.py checks that the kernel folders define no other (a
variant nobody tests) and no fewer. "requantize" is a building block, not a kernel."""

VARIANTS = {"conv2d": ("dsp", "mve"), "depthwise_conv2d": ("dsp", "mve"), "fully_connected": ("dsp", "mve"),
            "depthwise_conv2d_inplace": ("dsp", "mve"), "pointwise_depthwise_conv2d": ("dsp", "mve"),
            "requantize": ("dsp", "mve"), "conv2d_grad_input": ("dsp", "mve"),
            "depthwise_conv2d_grad_input": ("dsp", "mve"),
            "fully_connected_grad_input": ("dsp", "mve"), "fully_connected_grad_weight": ("dsp", "mve"),
            "fully_connected_update_weight": ("dsp", "mve"),
            # the weight-gradient / fused-update variants (tests/test_kernels_update_simd.py)
            "conv2d_grad_weight": ("dsp", "mve"), "conv2d_update_weight": ("dsp", "mve"),
            "depthwise_conv2d_grad_weight": ("dsp", "mve"), "depthwise_conv2d_update_weight": ("dsp", "mve"),
            # elementwise add, equal shapes (tests/test_kernels_add_simd.py): Helium only
            "add": ("mve",)}
