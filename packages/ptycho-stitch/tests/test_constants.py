"""The constants ptycho-stitch shares with the NumPy reference."""


def test_support_threshold_is_the_one_definition() -> None:
    """One SUPPORT_THRESHOLD for the NumPy reference merge and the stitching canvas."""
    import ptychopinn.config.constants
    import ptychopinn.stitch
    import ptychopinn.stitch.canvas

    assert ptychopinn.stitch.SUPPORT_THRESHOLD is ptychopinn.config.constants.SUPPORT_THRESHOLD
    assert ptychopinn.stitch.canvas.SUPPORT_THRESHOLD == 1e-6
