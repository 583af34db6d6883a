"""The explorer page (stage explorer): every step of the grid's runs and the study's on the
loss surface, and the rate map of gradient descent, heavy ball and Nesterov. `content`
gathers the runs (`sources` reads them, `replay` re-runs what the outputs keep no path of
and checks it), `minima` and `rates` what is drawn beside them, `pack` and `page` the HTML
file (page.html, page.js, page.css; Vega from `vega`)."""
