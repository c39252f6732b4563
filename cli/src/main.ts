console.log("seckill: not built yet");
