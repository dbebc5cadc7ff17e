"""Performance helpers shared by every speed benchmark: the machine's own peak, FLOP counts, fractions."""

from daar.perf.roofline import (
    MachineInfo,
    Peak,
    decoder_flops,
    fraction_line,
    machine_info,
    measure_peak,
    measure_peaks,
)

__all__ = ["MachineInfo", "Peak", "decoder_flops", "fraction_line", "machine_info", "measure_peak", "measure_peaks"]
