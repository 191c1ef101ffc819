// Ticket page: a click on a word plays the recording from that word and prepares its correction;
// choosing a category fills in its department.
(function () {
  "use strict";
  var audio = document.getElementById("audio");
  var index = document.getElementById("word-index");
  var text = document.getElementById("word-text");
  document.querySelectorAll("#transcript .word").forEach(function (btn) {
    btn.addEventListener("click", function () {
      document.querySelectorAll("#transcript .word.current").forEach(function (b) { b.classList.remove("current"); });
      btn.classList.add("current");
      if (audio) {
        audio.currentTime = parseFloat(btn.dataset.start);
        var played = audio.play();
        if (played && played.catch) { played.catch(function () {}); }
      }
      if (index && text) {
        index.value = btn.dataset.i;
        text.value = btn.textContent;
        text.focus();
        text.select();
      }
    });
  });
  if (audio) {
    var words = Array.prototype.slice.call(document.querySelectorAll("#transcript .word"));
    audio.addEventListener("timeupdate", function () {
      var t = audio.currentTime;
      words.forEach(function (w) {
        w.classList.toggle("playing", t >= parseFloat(w.dataset.start) && t < parseFloat(w.dataset.end));
      });
    });
  }
  var category = document.getElementById("category");
  var department = document.getElementById("department");
  if (category && department) {
    category.addEventListener("change", function () {
      var opt = category.options[category.selectedIndex];
      if (opt && opt.dataset.department) { department.value = opt.dataset.department; }
    });
  }
})();
