"""The console's full-screen views, pushed over the tiles: each renders the `ViewData` its
tick hands it and does no I/O."""
