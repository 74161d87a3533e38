"""Reading a plotly figure's arrays as its JSON (``st.plotly_chart``'s spec) holds them."""
import base64

import numpy as np


def values(array) -> list:
    """A figure's array as plotly's JSON holds it: a list, or typed bytes in base64 ({"dtype", "bdata"[, "shape"]})."""
    if isinstance(array, dict):
        raw = np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
        shape = [int(n) for n in str(array.get("shape", len(raw))).split(",")]
        return raw.reshape(shape).tolist()
    return list(array)
