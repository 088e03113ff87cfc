"""The metric families declared as data (name, type, help, how each value is read from an API object),
their labels and the price table. Reads collection results; imports ``collect`` and below."""
