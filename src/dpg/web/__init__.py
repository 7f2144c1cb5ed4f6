"""DPG's web exchange: the page shell (index.html), its ES modules (app/) and the libraries the
set-up copies from npm (vendor/), served by the API process (dpg.api.web)."""
