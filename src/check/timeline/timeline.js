function place(c) {
  var s = parseFloat(c.getAttribute('data-w')) / parseFloat(c.getAttribute('data-base'));
  c.style.width = (parseFloat(c.getAttribute('data-w')) + 80) + 'px';
  var els = c.querySelectorAll('[data-x]');
  for (var i = 0; i < els.length; i++) {
    var o = els[i];
    o.style.left = (80 + parseFloat(o.getAttribute('data-x')) * s) + 'px';
    if (o.hasAttribute('data-dx')) o.style.width = Math.max(2, parseFloat(o.getAttribute('data-dx')) * s) + 'px';
  }
  thin(c);
}
// Hides every tick label that would overlap the one before it.
function thin(c) {
  var ticks = c.querySelectorAll('.tick');
  var right = -1e9;
  for (var i = 0; i < ticks.length; i++) {
    var t = ticks[i];
    t.classList.remove('hidden');
    var left = parseFloat(t.style.left);
    if (left < right + 8) { t.classList.add('hidden'); continue; }
    right = left + t.offsetWidth;
  }
}
function zoom(id, f) {
  var c = document.getElementById(id);
  var w = parseFloat(c.getAttribute('data-w')) * f;
  if (w < 400) w = 400;
  if (w > 2000000) w = 2000000;
  c.setAttribute('data-w', w);
  place(c);
}
window.addEventListener('load', function () {
  var cs = document.querySelectorAll('.chart');
  for (var i = 0; i < cs.length; i++) thin(cs[i]);
});
