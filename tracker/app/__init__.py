"""The application around the `tracker` library: the command line's run (`run`), its frame loop,
where frames come from (`sources`) and where results go (sinks), drawing, the window, and folder
runs (`batch`, on processes or Ray). It imports the library; the library never imports it."""
