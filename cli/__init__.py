"""The ``tabellion`` command: a thin shell over the library."""
