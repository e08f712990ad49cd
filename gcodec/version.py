"""The package version, in a module of its own so that any module can import it without importing the
package's API (which would make the import graph circular)."""
__version__ = "0.8.0"
