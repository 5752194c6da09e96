"""The world-info manager: the library of world-info books, where each applies, their entries."""
