namespace DiffusionFunctional.Core

open System

/// One timestep's block of active channels: channels Start .. Start + Width - 1 (0-based).
[<Struct>]
type ChannelWindow =
    { Start: int
      Width: int }

    /// One past the last active channel.
    member w.End = w.Start + w.Width

/// Denoising Task Routing masks (Park, Woo, Go, Kim and Kim, "Denoising Task Routing for Diffusion Models",
/// ICLR 2024, the routing-mask equation of the method section; docs/routing-and-densities.md). Task t of T activates a window of
/// C_beta = floor(beta * C) consecutive channels out of C, starting at
///     s_t = round((C - C_beta) * u_t^alpha),   u_t = t / (T - 1)   (u_0 = 0 when T = 1).
/// beta ("share", the sharing ratio) is the active fraction; alpha ("sharpness") > 1 makes the window move slowly
/// for small t and fast for large t, so noisy tasks get more channels of their own.
/// Choices the paper leaves open, settled as the authors' released code (byeongjun-park/DTR, models/taskrouting.py):
/// - t is 0-based and normalised by T - 1, so t = 0 is the window [0, C_beta) and t = T - 1 the window [C - C_beta, C)
///   (the paper's 1-based form with (t-1)/T and t/T in the two bounds would let the width drift by one step);
/// - the width is fixed at floor(beta * C) computed in IEEE double (int(C * beta) in the code), so the active
///   fraction lies in (beta - 1/C, beta];
/// - round is round-half-to-even (numpy's round, .NET's default Math.Round);
/// - defaults beta = 0.8 (the code's config) and alpha = 4 (the code's default).
/// Hand-written: no served library defines these masks.
module TaskRouting =

    /// The sharing ratio of the authors' released configuration.
    [<Literal>]
    let DefaultShare = 0.8

    /// The window-speed exponent alpha of the authors' released code.
    [<Literal>]
    let DefaultSharpness = 4.0

    let private checkSettings (timesteps: int) (channels: int) (share: float) (sharpness: float) =
        if timesteps < 1 then invalidArg "timesteps" (sprintf "routing needs at least 1 timestep, got %d" timesteps)
        if channels < 1 then invalidArg "channels" (sprintf "routing needs at least 1 channel, got %d" channels)
        if Double.IsNaN share || share <= 0.0 || share > 1.0 then
            invalidArg "share" (sprintf "routing share must lie in (0, 1], got %g" share)
        if Double.IsNaN sharpness || Double.IsInfinity sharpness || sharpness <= 0.0 then
            invalidArg "sharpness" (sprintf "routing sharpness must be a positive number, got %g" sharpness)
        if Math.Floor(share * float channels) < 1.0 then
            invalidArg "share" (sprintf "routing share %g activates no channel of %d (floor(share * C) must be at least 1)" share channels)

    /// C_beta = floor(share * C): the number of active channels per timestep. Throws ArgumentException on bad settings.
    let activeChannels (channels: int) (share: float) : int =
        checkSettings 1 channels share DefaultSharpness
        int (Math.Floor(share * float channels))

    /// The window of timestep t (0 <= t < T). Throws ArgumentException on bad settings or t outside [0, T).
    let window (t: int) (timesteps: int) (channels: int) (share: float) (sharpness: float) : ChannelWindow =
        checkSettings timesteps channels share sharpness
        if t < 0 || t >= timesteps then invalidArg "t" (sprintf "timestep %d lies outside [0, %d)" t timesteps)
        let width = int (Math.Floor(share * float channels))
        let position = if timesteps = 1 then 0.0 else float t / float (timesteps - 1)
        let start = Math.Round(float (channels - width) * Math.Pow(position, sharpness), MidpointRounding.ToEven)
        { Start = int start; Width = width }

    /// The mask of timestep t as booleans, true on the active channels.
    let mask (t: int) (timesteps: int) (channels: int) (share: float) (sharpness: float) : bool[] =
        let w = window t timesteps channels share sharpness
        Array.init channels (fun c -> c >= w.Start && c < w.End)

    /// The mask of timestep t as 0/1 values (what multiplies the activations).
    let maskValues (t: int) (timesteps: int) (channels: int) (share: float) (sharpness: float) : float[] =
        mask t timesteps channels share sharpness |> Array.map (fun on -> if on then 1.0 else 0.0)

    /// Every timestep's mask, row-major [T, C] as float32 0/1 (row t = mask of t): the table a network looks up.
    let table (timesteps: int) (channels: int) (share: float) (sharpness: float) : float32[] =
        checkSettings timesteps channels share sharpness
        let values = Array.zeroCreate (timesteps * channels)
        for t in 0 .. timesteps - 1 do
            let w = window t timesteps channels share sharpness
            for c in w.Start .. w.End - 1 do
                values.[t * channels + c] <- 1.0f
        values

    /// Number of channels two windows share.
    let windowOverlap (a: ChannelWindow) (b: ChannelWindow) : int =
        max 0 (min a.End b.End - max a.Start b.Start)

    /// Number of channels the masks of timesteps t1 and t2 share (C_beta when t1 = t2).
    let overlap (t1: int) (t2: int) (timesteps: int) (channels: int) (share: float) (sharpness: float) : int =
        windowOverlap (window t1 timesteps channels share sharpness) (window t2 timesteps channels share sharpness)
