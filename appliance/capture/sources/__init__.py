"""Where pages come from: SANE scanners, eSCL network scanners, a watch folder, uploads."""
