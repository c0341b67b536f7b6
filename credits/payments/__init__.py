"""The payment gateway seam: the interface and results (`base`), the decline reasons
(`reasons`), card-number rules (`cards`) and the simulated gateway (`simulated`)."""
