"""Audio without torch: sample arrays (:mod:`.dsp`), loudness (:mod:`.loudness`), file codecs (:mod:`.codecs`)
and the sandboxed decoder of untrusted files (:mod:`.sandbox`, whose child is :mod:`.sandbox_child`).

Audio crosses these modules as ``np.float32`` ``[C, T]`` in [-1, 1] together with its sample rate in Hz.
"""
