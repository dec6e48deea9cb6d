// GPU lowerings register themselves on import; one file per op family, mirroring ops/.
import './elementwise.js';
