project = "datalad-slurmsweep"
author = "datalad-slurmsweep developers"
extensions = []
source_suffix = ".rst"
master_doc = "index"
exclude_patterns = ["_build", "settings.rst"]  # included by configuration.rst
html_theme = "alabaster"
