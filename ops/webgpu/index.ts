// GPU lowerings register themselves on import; one file per op family, mirroring ops/.
import './elementwise.js';
import './matmul.js';
import './conv.js';
import './pool.js';
import './reduce.js';
import './softmax.js';
import './normalization.js';
import './shape.js';
import './movement.js';
import './gather.js';
import './cast.js';
import './resize.js';
import './sort.js';
import './recurrent.js';
import './attention.js';
