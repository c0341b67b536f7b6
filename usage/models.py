"""Rate deck, call records, minute pools and exports (see DESIGN.md sections 6, 7 and 9)."""
