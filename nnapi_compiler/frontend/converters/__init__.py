"""One module per op family; importing the package registers every converter."""
